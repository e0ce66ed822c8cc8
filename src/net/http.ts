import { createRequire } from 'node:module';

/**
 * node:http, loaded as CommonJS. An ESM `import ... from 'node:http'` (even of one name) builds the
 * module's whole namespace, which reads its lazy exports and so loads node:tls, node:http2 and
 * node:zlib: about a hundred more built-in modules, measured at 30-80 ms of start-up CPU and several
 * MB of resident memory in every process that imports it. require() reads only what is used.
 * Import types from 'node:http' as usual (`import type` is erased).
 */
const load = createRequire(import.meta.url);
export const http: typeof import('node:http') = load('node:http');
