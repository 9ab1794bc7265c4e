import type { UpstreamOutcome } from './outcome.ts';

/** An upstream answer in the form statuses, webhooks and result topics carry (structurally contracts' HttpResult). */
export interface ResultDocument {
  status: number;
  headers: Record<string, string>;
  body?: string;
  bodyBase64?: string;
}

const textual =
  /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded|problem\+json))/i;

/** Text bodies stay text when they are valid UTF-8; anything else is carried base64, so no byte is lost. */
export function resultOf(response: Extract<UpstreamOutcome, { kind: 'response' }>): ResultDocument {
  const base = { status: response.status, headers: response.headers };
  if (response.body.length === 0) return { ...base, body: '' };
  const type = response.headers['content-type'] ?? '';
  if (textual.test(type)) {
    try {
      return { ...base, body: new TextDecoder('utf-8', { fatal: true }).decode(response.body) };
    } catch {
      // Declared as text but not UTF-8: fall through to base64.
    }
  }
  return { ...base, bodyBase64: response.body.toString('base64') };
}
