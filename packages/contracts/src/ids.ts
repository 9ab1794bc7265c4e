import { v7 as uuidv7, validate, version } from 'uuid';

/**
 * Tracking ids are UUIDv7: unique without coordination between ingress replicas, and ordered by creation time,
 * which keeps them friendly to indexes and makes a log line's age visible from its id.
 */
export function newId(): string {
  return uuidv7();
}

export function isId(value: string): boolean {
  return validate(value) && version(value) === 7;
}
