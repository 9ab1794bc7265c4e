import { v5 as uuidv5, v7 as uuidv7, validate, version } from 'uuid';

/**
 * Tracking ids are UUIDv7: unique without coordination between ingress replicas, and ordered by creation time,
 * which keeps them friendly to indexes and makes a log line's age visible from its id.
 */
export function newId(): string {
  return uuidv7();
}

/** The namespace of Sluice's name-based ids (a random UUID, fixed forever: changing it changes every derived id). */
const derivedIdNamespace = '5b0f3c8e-2a41-4d6b-9b7e-6f1c2d3e4a5b';

/**
 * A name-based id (UUIDv5): the same parts give the same id on every replica. Used where an id must be agreed
 * on without a shared store (see the ingress's idempotency fallback); its creation time is not in it.
 */
export function derivedId(parts: readonly string[]): string {
  // A separator that cannot occur inside a part keeps ["a", "bc"] and ["ab", "c"] apart.
  return uuidv5(parts.map((part) => encodeURIComponent(part)).join('/'), derivedIdNamespace);
}

export function isId(value: string): boolean {
  return validate(value) && (version(value) === 7 || version(value) === 5);
}

/** Whether the id carries its creation time (UUIDv7), and that time in ms since the epoch. */
export function idCreatedAt(value: string): number | undefined {
  if (!validate(value) || version(value) !== 7) return undefined;
  return Number.parseInt(value.replaceAll('-', '').slice(0, 12), 16);
}
