/**
 * A metadata tree: directories are objects, leaves are strings or functions computing a value at
 * request time (credentials, tokens). Used by the flavours whose API is a path tree (AWS, GCP,
 * DigitalOcean, Alibaba).
 */

export interface LeafValue {
  body: string;
  contentType: string;
}
export type LeafFn = () => string | LeafValue;
export type TreeNode = string | LeafFn | TreeDir;
export interface TreeDir {
  readonly [name: string]: TreeNode;
}

export type Resolved = { kind: 'dir'; dir: TreeDir } | { kind: 'leaf'; value: string | LeafValue };

export function isDir(node: TreeNode): node is TreeDir {
  return typeof node === 'object';
}

/** Walks `segments` (empty segments ignored) from `root`. undefined when there is no such node. */
export function resolve(root: TreeDir, segments: readonly string[]): Resolved | undefined {
  let node: TreeNode = root;
  for (const seg of segments) {
    if (seg === '') continue;
    if (!isDir(node) || !Object.hasOwn(node, seg)) return undefined;
    node = node[seg] as TreeNode;
  }
  if (isDir(node)) return { kind: 'dir', dir: node };
  return { kind: 'leaf', value: typeof node === 'function' ? node() : node };
}

/** A directory listing: one entry a line, sub-directories with a trailing '/'. */
export function listing(dir: TreeDir): string {
  return Object.entries(dir)
    .map(([name, node]) => (isDir(node) ? `${name}/` : name))
    .join('\n');
}

/** Splits a path into segments, percent-decoded. undefined when the encoding is invalid. */
export function splitPath(path: string): string[] {
  return path.split('/').slice(1);
}
