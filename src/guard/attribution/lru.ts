/**
 * A small LRU map with a hard entry limit and an optional time to live. Map keeps insertion order,
 * so re-inserting on access makes the first key the least recently used one.
 */
export class Lru<K, V> {
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #map = new Map<K, { value: V; at: number }>();

  /** max: entries kept (>= 1). ttlMs: milliseconds an entry stays valid (0 = no expiry). */
  constructor(max: number, ttlMs = 0, now: () => number = () => performance.now()) {
    this.#max = Math.max(1, Math.floor(max));
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (this.#ttlMs > 0 && this.#now() - e.at > this.#ttlMs) {
      this.#map.delete(key);
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.value;
  }

  /** Reads without refreshing recency. */
  peek(key: K): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (this.#ttlMs > 0 && this.#now() - e.at > this.#ttlMs) return undefined;
    return e.value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, { value, at: this.#now() });
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      this.#map.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  /** Keys, most recently used first. */
  keysByRecency(): K[] {
    return [...this.#map.keys()].reverse();
  }
}
