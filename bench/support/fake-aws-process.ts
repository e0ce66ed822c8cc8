/**
 * fake-aws in a child process for the fleet benches, so the server's CPU work stays off the measured
 * event loop (as with real AWS). The child (a bench's server.ts) prints one JSON line first, then
 * answers one JSON line per stdin command; `exit` closes it.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FakeAws } from '../../test/support/fake-aws/index.js';

/** The value after `--name` on the command line, else fallback. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/**
 * The server script beside the module `moduleUrl` (pass import.meta.url): compiled JS (npm run
 * bench:...) or TypeScript via vite-node.
 */
function serverEntry(moduleUrl: string): string[] {
  const here = fileURLToPath(moduleUrl);
  if (here.endsWith('.js')) return [join(dirname(here), 'server.js')];
  return ['node_modules/vite-node/vite-node.mjs', join(dirname(here), 'server.ts'), '--'];
}

/** fake-aws in a child process (the server.ts beside moduleUrl, with args), driven over stdin/stdout lines. */
export class ServerProcess {
  url = '';
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: Interface;
  private readonly waiting: Array<(line: string) => void> = [];

  constructor(moduleUrl: string, args: readonly string[]) {
    this.child = spawn(process.execPath, [...serverEntry(moduleUrl), ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
  }

  private next(): Promise<string> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async start(): Promise<void> {
    this.url = (JSON.parse(await this.next()) as { url: string }).url;
  }

  async send<T>(cmd: string): Promise<T> {
    const p = this.next();
    this.child.stdin.write(`${cmd}\n`);
    return JSON.parse(await p) as T;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.write('exit\n');
    });
  }
}

/**
 * The child side: prints `hello` as the first line, then answers each stdin command with the JSON of
 * its handler (unknown commands get no answer). `exit` or the end of stdin closes fake-aws and exits.
 */
export function serveFakeAws(aws: FakeAws, hello: object, commands: Record<string, () => unknown>): void {
  process.stdout.write(`${JSON.stringify(hello)}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    const cmd = line.trim();
    if (cmd === 'exit') {
      rl.close();
      await aws.close();
      process.exit(0);
    }
    const handler = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
    if (handler) process.stdout.write(`${JSON.stringify(handler())}\n`);
  });
  rl.on('close', () => {
    void aws.close().then(() => process.exit(0));
  });
}
