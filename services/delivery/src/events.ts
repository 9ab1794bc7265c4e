import { type CompletionMessage, publicStatus, recordHeaders } from '@sluice/contracts';
import type { ProducerRecord } from '@sluice/kafka';
import { CloudEvent, Kafka } from 'cloudevents';

/** The event types Sluice publishes (CloudEvents `type`, and the webhook payload's `type`). */
export const eventTypes = {
  request: { cloudEvent: 'dev.sluice.request.completed', webhook: 'request.completed' },
  batch: { cloudEvent: 'dev.sluice.batch.completed', webhook: 'batch.completed' },
} as const;

/** The data of a completion as clients see it: a request's public status, or a batch's summary. */
export function completionData(completion: CompletionMessage): Record<string, unknown> {
  if (completion.kind === 'request') return { ...publicStatus(completion.status) };
  return {
    batchId: completion.batchId,
    route: completion.route,
    acceptedAt: new Date(completion.acceptedAt).toISOString(),
    completedAt: new Date(completion.completedAt).toISOString(),
    counts: completion.counts,
    items: completion.items,
  };
}

/**
 * The id receivers de-duplicate by: the same for every try and every re-delivery of one completion. A redriven
 * request's later ending is another completion, so its generation is part of the id (receivers must not drop it).
 */
export function messageIdOf(completion: CompletionMessage): string {
  if (completion.kind === 'batch') return `msg_batch_${completion.batchId}`;
  const generation = completion.status.generation ?? 0;
  return generation === 0 ? `msg_request_${completion.id}` : `msg_request_${completion.id}_r${generation}`;
}

export function webhookPayload(completion: CompletionMessage, now: Date): string {
  return JSON.stringify({
    type: eventTypes[completion.kind].webhook,
    timestamp: now.toISOString(),
    data: completionData(completion),
  });
}

/**
 * A completion as a CloudEvent in Kafka binary content mode: attributes in `ce_*` headers, the data as the
 * JSON value, keyed by the request id (or the batch id for a batch's completion).
 */
export function resultTopicRecord(topic: string, completion: CompletionMessage): ProducerRecord {
  const subject = completion.kind === 'request' ? completion.id : completion.batchId;
  const time =
    completion.kind === 'request'
      ? (completion.status.timings.finishedAt ?? completion.status.updatedAt)
      : completion.completedAt;
  const event = new CloudEvent({
    specversion: '1.0',
    id: messageIdOf(completion),
    type: eventTypes[completion.kind].cloudEvent,
    source: `/sluice/tenants/${completion.tenant}`,
    subject,
    time: new Date(time).toISOString(),
    datacontenttype: 'application/json',
    data: completionData(completion),
    partitionkey: subject,
  });
  const message = Kafka.binary(event);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers))
    if (value !== undefined) headers[name] = String(value);
  return {
    topic,
    key: subject,
    value: JSON.stringify(message.value),
    headers: {
      ...headers,
      [recordHeaders.batchId]: completion.batchId,
      ...(completion.kind === 'request' ? { [recordHeaders.requestId]: completion.id } : {}),
    },
  };
}
