/** A writable that commands and core code print to: process.stdout in production, a buffer in tests. */
export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
}
