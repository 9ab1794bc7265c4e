import { type Attempt, codecs, type DeadLetterReason, recordHeaders } from '@sluice/contracts';
import type { ConsumedRecord, ProducerRecord } from '@sluice/kafka';

export interface DeadLetterInput {
  /** The dead-letter topic (prefix applied). */
  topic: string;
  service: string;
  record: ConsumedRecord;
  reason: DeadLetterReason;
  detail: string;
  attempts?: Attempt[];
  requestId?: string | undefined;
  tenant?: string | undefined;
  now?: number;
}

/**
 * The dead-letter record of a consumed record: the original whole (key and value base64, so that bytes that
 * were not text survive), why, and every try. Keyed by the request id when known, so that a redrive finds it.
 */
export function deadLetterRecord(input: DeadLetterInput): ProducerRecord {
  const { record } = input;
  const requestId = input.requestId ?? record.headers[recordHeaders.requestId];
  const tenant = input.tenant ?? record.headers[recordHeaders.tenant];
  const encoded = codecs.deadLetter.encode({
    reason: input.reason,
    detail: input.detail,
    service: input.service,
    deadLetteredAt: input.now ?? Date.now(),
    ...(requestId !== undefined ? { requestId } : {}),
    ...(tenant !== undefined ? { tenant } : {}),
    original: {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset.toString(),
      timestamp: record.timestamp,
      key: record.key === null ? null : record.key.toString('base64'),
      value: record.value === null ? null : record.value.toString('base64'),
      headers: record.headers,
    },
    attempts: input.attempts ?? [],
  });
  return {
    topic: input.topic,
    key: requestId ?? `${record.topic}:${record.partition}:${record.offset}`,
    value: encoded.value,
    headers: {
      ...encoded.headers,
      [recordHeaders.deadLetterReason]: input.reason,
      ...(requestId !== undefined ? { [recordHeaders.requestId]: requestId } : {}),
      ...(tenant !== undefined ? { [recordHeaders.tenant]: tenant } : {}),
    },
  };
}

/** The not-before time of a retry record, or 0 when it has none (process at once). */
export function notBeforeOf(record: ConsumedRecord): number {
  const value = Number(record.headers[recordHeaders.notBefore] ?? '0');
  return Number.isFinite(value) ? value : 0;
}

/**
 * Waits until the epoch-millisecond instant, or rejects when the signal aborts (shutdown): the record then
 * stays unfinished and is read again after the restart, so a wait never loses a retry.
 */
export async function waitUntil(instant: number, signal: AbortSignal): Promise<void> {
  const delay = instant - Date.now();
  if (delay <= 0) return;
  signal.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, delay);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
