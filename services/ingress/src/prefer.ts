/**
 * The `wait` preference of a Prefer header (RFC 7240 §4.3) in seconds; undefined when absent. Preferences are
 * comma-separated tokens with optional values; other preferences are ignored, as the RFC asks.
 */
export function preferredWaitSeconds(header: string | undefined): number | undefined | 'invalid' {
  if (header === undefined) return undefined;
  for (const preference of header.split(',')) {
    const [name, ...rest] = preference.split('=');
    if (name?.trim().toLowerCase() !== 'wait') continue;
    const value =
      rest
        .join('=')
        .split(';')[0]
        ?.trim()
        .replace(/^"(.*)"$/, '$1') ?? '';
    if (!/^\d{1,6}$/.test(value)) return 'invalid';
    return Number(value);
  }
  return undefined;
}
