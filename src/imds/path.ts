/**
 * Request-target normalization. The guard decides on the normalized path and forwards exactly that
 * path (re-encoded canonically), so what a rule matched is what the upstream serves: percent-encoding,
 * encoded slashes or dots, `..`, `//` and backslashes cannot smuggle a request past a rule.
 *
 * Pure: no I/O.
 */

export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

export type NormalizedTarget =
  | {
      ok: true;
      form: TargetForm;
      /** Decoded, normalized path used for rule matching and events (no query). */
      path: string;
      /** The canonical, percent-encoded path plus the original query: what is sent upstream. */
      forwardPath: string;
      /** The raw query string including '?', or '' (forwarded untouched, never recorded). */
      query: string;
      /** True when normalization changed the path (encoding, dot segments, double slashes...). */
      changed: boolean;
      /** Host named by an absolute-form target. */
      authority?: string;
    }
  | { ok: false; form: TargetForm; reason: string };

const ABSOLUTE = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
/** RFC 3986 pchar minus '%': characters a segment may carry unencoded. */
const SAFE_SEGMENT = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]*$/;

function encodeSegment(seg: string): string {
  if (SAFE_SEGMENT.test(seg)) return seg;
  let out = '';
  for (const ch of seg) {
    if (SAFE_SEGMENT.test(ch)) out += ch;
    else {
      for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/** Decodes %XX escapes once. Returns undefined on a malformed escape or invalid UTF-8. */
function decodeOnce(s: string): string | undefined {
  if (!s.includes('%')) return s;
  if (/%(?![0-9a-fA-F]{2})/.test(s)) return undefined;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/**
 * Normalizes a request-target as an origin server would resolve it:
 * - the query is split off (kept for forwarding, never used for matching or recorded);
 * - percent-escapes are decoded once; an encoded slash (%2F) or backslash (%5C) becomes a separator;
 * - literal backslashes are separators too;
 * - empty segments (`//`) and `.` are removed, `..` removes the previous segment (never above root);
 * - a trailing slash is kept (listings end in `/`);
 * - control characters (raw or decoded), NUL, `#`, malformed escapes and a `%` left after decoding
 *   (double encoding) make the target malformed.
 */
export function normalizeTarget(target: string): NormalizedTarget {
  if (target === '*') return { ok: false, form: 'asterisk', reason: 'asterisk-form request target' };
  let form: TargetForm = 'origin';
  let rest = target;
  let authority: string | undefined;
  if (!target.startsWith('/')) {
    if (ABSOLUTE.test(target)) {
      form = 'absolute';
      const afterScheme = target.slice(target.indexOf('//') + 2);
      const slash = afterScheme.search(/[/?]/);
      authority = slash === -1 ? afterScheme : afterScheme.slice(0, slash);
      rest = slash === -1 ? '/' : afterScheme.slice(slash);
      if (!rest.startsWith('/')) rest = `/${rest}`;
    } else if (/^[^/\s]+:\d+$/.test(target)) {
      return { ok: false, form: 'authority', reason: 'authority-form request target (CONNECT)' };
    } else {
      return { ok: false, form: 'origin', reason: 'request target does not start with "/"' };
    }
  }
  // Control characters, spaces and '#' never belong in a request target.
  if (/[\x00-\x20\x7f#]/.test(rest)) {
    return { ok: false, form, reason: 'request target contains a control character, space or "#"' };
  }
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  const decoded = decodeOnce(rawPath);
  if (decoded === undefined) {
    return { ok: false, form, reason: 'malformed percent-encoding in the path' };
  }
  if (/[\x00-\x1f\x7f]/.test(decoded)) {
    return { ok: false, form, reason: 'the path decodes to a control character' };
  }
  // No metadata path contains "%": one that is still encoded after one decoding could be read
  // differently by a decoder that decodes twice (%252e%252e is ".." to it).
  if (decoded.includes('%')) {
    return { ok: false, form, reason: 'the path is still percent-encoded after one decoding' };
  }
  const parts = decoded.replace(/\\/g, '/').split('/');
  const segments: string[] = [];
  let trailing = false;
  for (let i = 0; i < parts.length; i++) {
    const seg = parts[i] as string;
    const last = i === parts.length - 1;
    if (seg === '' || seg === '.') {
      if (last) trailing = true;
      continue;
    }
    if (seg === '..') {
      segments.pop();
      if (last) trailing = true;
      continue;
    }
    segments.push(seg);
  }
  const path = segments.length === 0 ? '/' : `/${segments.join('/')}${trailing ? '/' : ''}`;
  const encoded =
    segments.length === 0 ? '/' : `/${segments.map(encodeSegment).join('/')}${trailing ? '/' : ''}`;
  const result: NormalizedTarget = {
    ok: true,
    form,
    path,
    forwardPath: encoded + query,
    query,
    changed: encoded !== rawPath,
  };
  if (authority !== undefined) result.authority = authority;
  return result;
}
