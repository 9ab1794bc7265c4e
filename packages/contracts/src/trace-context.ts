import { randomBytes } from 'node:crypto';
import { recordHeaders } from './headers.ts';

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * A W3C Trace Context `traceparent` for the next hop: the same trace id as the parent (a new one when there is
 * none or it is malformed), a new span id, the parent's flags.
 */
export function childTraceparent(parent: string | undefined): string {
  const match = traceparentPattern.exec(parent?.trim().toLowerCase() ?? '');
  const traceId =
    match?.[1] !== undefined && !/^0+$/.test(match[1]) ? match[1] : randomBytes(16).toString('hex');
  const flags = match?.[3] ?? '01';
  return `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
}

/** The trace-context headers of a consumed record, to carry onto the records produced from it. */
export function traceHeadersOf(headers: Record<string, string>): Record<string, string> {
  const carried: Record<string, string> = {};
  const traceparent = headers[recordHeaders.traceparent];
  if (traceparent !== undefined) carried[recordHeaders.traceparent] = childTraceparent(traceparent);
  const tracestate = headers[recordHeaders.tracestate];
  if (tracestate !== undefined) carried[recordHeaders.tracestate] = tracestate;
  return carried;
}
