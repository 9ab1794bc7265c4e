import { recordHeaders } from './headers.ts';
import type { CompletionMessage, WebhookRetryMessage } from './messages/completion.ts';
import { codecs } from './messages/index.ts';
import type { ProgressMessage } from './messages/progress.ts';
import { type RequestMessage, requestRecordKey } from './messages/request.ts';
import type { StatusMessage } from './messages/status.ts';

/**
 * A record ready to produce: structurally the Kafka package's ProducerRecord. The key and the headers of every
 * topic are part of its contract as much as the value is, so they are built here, once.
 */
export interface OutgoingRecord {
  topic: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

function ids(requestId: string | undefined, batchId: string, tenant: string): Record<string, string> {
  return {
    ...(requestId !== undefined ? { [recordHeaders.requestId]: requestId } : {}),
    [recordHeaders.batchId]: batchId,
    [recordHeaders.tenant]: tenant,
  };
}

/** Trace context (and other headers) a producer carries over from what it is handling. */
export type CarriedHeaders = Record<string, string>;

/** A request on the request topic, or on the retry topic with its not-before time. Keyed by ordering key or id. */
export function requestRecord(
  topic: string,
  request: RequestMessage,
  carried: CarriedHeaders = {},
  notBefore?: number,
): OutgoingRecord {
  const encoded = codecs.request.encode(request);
  return {
    topic,
    key: requestRecordKey(request),
    value: encoded.value,
    headers: {
      ...encoded.headers,
      ...carried,
      ...ids(request.id, request.batchId, request.tenant),
      [recordHeaders.kind]: 'request',
      ...(notBefore !== undefined ? { [recordHeaders.notBefore]: String(notBefore) } : {}),
    },
  };
}

/** Progress for the aggregator, keyed by batch id so that a batch's records share a partition. */
export function progressRecord(
  topic: string,
  message: ProgressMessage,
  carried: CarriedHeaders = {},
): OutgoingRecord {
  const encoded = codecs.progress.encode(message);
  return {
    topic,
    key: message.batchId,
    value: encoded.value,
    headers: {
      ...encoded.headers,
      ...carried,
      ...ids(message.kind === 'accepted' ? undefined : message.id, message.batchId, message.tenant),
      [recordHeaders.kind]: message.kind,
    },
  };
}

/** A status on the compacted status topic, keyed by request id. */
export function statusRecord(
  topic: string,
  status: StatusMessage,
  carried: CarriedHeaders = {},
): OutgoingRecord {
  const encoded = codecs.status.encode(status);
  return {
    topic,
    key: status.id,
    value: encoded.value,
    headers: { ...encoded.headers, ...carried, ...ids(status.id, status.batchId, status.tenant) },
  };
}

/** A completion for delivery, keyed by batch id. */
export function completionRecord(
  topic: string,
  completion: CompletionMessage,
  carried: CarriedHeaders = {},
): OutgoingRecord {
  const encoded = codecs.completion.encode(completion);
  return {
    topic,
    key: completion.batchId,
    value: encoded.value,
    headers: {
      ...encoded.headers,
      ...carried,
      ...ids(
        completion.kind === 'request' ? completion.id : undefined,
        completion.batchId,
        completion.tenant,
      ),
      [recordHeaders.kind]: completion.kind,
    },
  };
}

/** A webhook waiting for its next try on the webhook retry topic. */
export function webhookRetryRecord(
  topic: string,
  retry: WebhookRetryMessage,
  notBefore: number,
  carried: CarriedHeaders = {},
): OutgoingRecord {
  const { completion } = retry;
  const encoded = codecs.webhookRetry.encode(retry);
  return {
    topic,
    key: completion.batchId,
    value: encoded.value,
    headers: {
      ...encoded.headers,
      ...carried,
      ...ids(
        completion.kind === 'request' ? completion.id : undefined,
        completion.batchId,
        completion.tenant,
      ),
      [recordHeaders.notBefore]: String(notBefore),
    },
  };
}
