export class UpstreamPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamPathError';
  }
}

/**
 * Refuses a client's path that could leave the route's base path: not starting with a single "/", control
 * characters, "\\", "?" or "#", bad percent-encoding, "." or ".." segments (also percent-encoded), encoded slashes.
 */
export function checkUpstreamPath(path: string): void {
  if (!path.startsWith('/') || path.startsWith('//')) {
    throw new UpstreamPathError('path must start with a single "/"');
  }
  if (hasForbiddenCharacter(path)) {
    throw new UpstreamPathError('path must not contain control characters, "\\", "?" or "#"');
  }
  const segments = path.split('/');
  for (const segment of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new UpstreamPathError('path has an invalid percent-encoding');
    }
    if (decoded === '..' || decoded === '.' || decoded.includes('/') || decoded.includes('\\')) {
      throw new UpstreamPathError('path must not contain "." or ".." segments or encoded slashes');
    }
  }
}

/**
 * The URL a request goes to: the target's base URL with the request's path appended below the base path, and
 * its query. The client supplies only a path, never an origin; a path that would climb out of the base path
 * (`..` segments, also percent-encoded) or name another authority (`//host`) is refused.
 */
export function upstreamUrl(base: string, path: string, query: Record<string, string | string[]> = {}): URL {
  checkUpstreamPath(path);
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.search = '';
  for (const [name, value] of Object.entries(query)) {
    for (const item of [value].flat()) url.searchParams.append(name, item);
  }
  return url;
}

/** Control characters (CR/LF would split a request line), backslashes, and the query or fragment delimiters. */
function hasForbiddenCharacter(path: string): boolean {
  for (const char of path) {
    const code = char.charCodeAt(0);
    if (code < 0x20 || code === 0x7f || char === '\\' || char === '?' || char === '#') return true;
  }
  return false;
}
