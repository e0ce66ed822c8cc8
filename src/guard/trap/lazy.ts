import type { TrapConfig } from '../../config/schema.js';
import type { Flavor } from '../../imds/flavors.js';
import type { Trap } from './index.js';

type TrapModule = typeof import('./index.js');

/** The trap's module once a guard loaded it (it stays loaded: a reload builds its trap at once). */
let loaded: TrapModule | undefined;

/**
 * The trap of a guard in trap mode, built from its module (the emulator's instance model and flavour
 * handlers), which only trap mode loads: the other modes start without it. The first trap of a
 * process is ready once the module loaded (the guard waits for it before it listens); later ones are
 * built at once, so a reload with a trap the module refuses throws and keeps the running policy.
 */
export class LazyTrap {
  #trap: Trap | undefined;
  /** Settles once the trap is built; rejects when the trap cannot be built. */
  readonly ready: Promise<Trap>;

  constructor(config: TrapConfig, flavor: Flavor, hostname: string, now: () => number) {
    const build = (m: TrapModule): Trap => {
      this.#trap = m.createTrap(config, flavor, hostname, now);
      return this.#trap;
    };
    if (loaded !== undefined) {
      this.ready = Promise.resolve(build(loaded));
      return;
    }
    this.ready = import('./index.js').then((m) => {
      loaded = m;
      return build(m);
    });
    // The guard's start() and every trapped request wait for it and see the failure.
    this.ready.catch(() => {});
  }

  /** The trap once built. */
  get value(): Trap | undefined {
    return this.#trap;
  }
}
