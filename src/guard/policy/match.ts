/**
 * Pattern compilation for policy rules. Pure.
 *
 * A pattern without wildcards matches exactly. A pattern ending in `/`, `/*` or `/**` matches that
 * folder and everything below it (`/opt/app/*` matches `/opt/app/bin/x`). Elsewhere `**` matches any
 * characters, `*` any characters except `/`, and `?` one character except `/`.
 */

export type Matcher = (value: string) => boolean;

function escapeRegExp(s: string): string {
  return s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

function globBody(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else out += escapeRegExp(c);
  }
  return out;
}

export function compilePattern(pattern: string, caseInsensitive = false): Matcher {
  let base = pattern;
  let prefix = false;
  for (const suffix of ['/**', '/*', '/']) {
    if (base.length > suffix.length && base.endsWith(suffix)) {
      base = base.slice(0, -suffix.length);
      prefix = true;
      break;
    }
  }
  if (!prefix && !/[*?]/.test(base)) {
    if (caseInsensitive) {
      const lower = base.toLowerCase();
      return (v) => v.toLowerCase() === lower;
    }
    return (v) => v === base;
  }
  const re = new RegExp(`^${globBody(base)}${prefix ? '(?:/.*)?' : ''}$`, caseInsensitive ? 'is' : 's');
  return (v) => re.test(v);
}

/** Matches when any of the patterns matches. */
export function compilePatterns(patterns: readonly string[], caseInsensitive = false): Matcher {
  const ms = patterns.map((p) => compilePattern(p, caseInsensitive));
  if (ms.length === 1) return ms[0] as Matcher;
  return (v) => ms.some((m) => m(v));
}

/** Request paths are matched without their trailing slash (a folder matches with or without it). */
export function pathForMatch(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}
