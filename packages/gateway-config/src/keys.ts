import { createHash, randomBytes } from 'node:crypto';

/** The stored form of an API key: hex SHA-256. Only this ever reaches a file, a log or memory at rest. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new API key: 32 random bytes, base64url, with a prefix that secret scanners can recognise. */
export function generateApiKey(): string {
  return `sk_sluice_${randomBytes(32).toString('base64url')}`;
}

/** A new Standard Webhooks signing secret. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
