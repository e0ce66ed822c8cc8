import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type AlertSink, SinkError } from './types.js';

export const FILE_MAX_BATCH = 500;

export interface FileSinkOptions {
  name: string;
  path: string;
  /** File mode when the file is created. */
  mode?: number;
}

/** Appends one JSON line per alert. A batch is one write, and is on disk (fdatasync) before send() resolves. */
export function createFileSink(opts: FileSinkOptions): AlertSink {
  let fh: FileHandle | undefined;
  const handle = async (): Promise<FileHandle> => {
    if (fh) return fh;
    await mkdir(dirname(opts.path), { recursive: true });
    fh = await open(opts.path, 'a', opts.mode ?? 0o640);
    return fh;
  };
  return {
    name: opts.name,
    maxBatch: FILE_MAX_BATCH,
    async send(batch) {
      if (batch.length === 0) return;
      const text = batch.map((a) => `${JSON.stringify(a)}\n`).join('');
      try {
        const h = await handle();
        await h.appendFile(text, 'utf8');
        await h.datasync();
      } catch (err) {
        const f = fh;
        fh = undefined;
        await f?.close().catch(() => {});
        throw new SinkError(`file ${opts.path}: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      }
    },
    async close() {
      const f = fh;
      fh = undefined;
      await f?.close();
    },
  };
}
