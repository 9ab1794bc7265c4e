/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded. */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Headers the HTTP client sets itself from the request it sends. */
const computedHeaders: ReadonlySet<string> = new Set(['host', 'content-length', 'expect']);

/** Sluice's own headers: a client must not be able to forge them toward an upstream. */
export const internalHeaderPrefix = 'sluice-';

/**
 * The headers of a client's request as they may go to an upstream: names lower-cased, hop-by-hop headers
 * (including those a Connection header names) and Sluice's internal headers removed.
 */
export function forwardableHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const named = new Set<string>();
  const connection = headers.connection ?? headers.Connection;
  for (const value of [connection].flat()) {
    for (const token of (value ?? '').split(',')) if (token.trim()) named.add(token.trim().toLowerCase());
  }
  const result: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined) continue;
    if (hopByHopHeaders.has(name) || named.has(name) || computedHeaders.has(name)) continue;
    if (name.startsWith(internalHeaderPrefix)) continue;
    result[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return result;
}
