import { Codec } from '../codec.ts';
import { batchState } from './batch-state.ts';
import { completionMessage, webhookRetryMessage } from './completion.ts';
import { deadLetterMessage } from './dead-letter.ts';
import { progressMessage } from './progress.ts';
import { requestMessage } from './request.ts';
import { statusMessage } from './status.ts';

/** One codec per topic's value schema. */
export const codecs = {
  request: new Codec(requestMessage),
  progress: new Codec(progressMessage),
  status: new Codec(statusMessage),
  batchState: new Codec(batchState),
  completion: new Codec(completionMessage),
  webhookRetry: new Codec(webhookRetryMessage),
  deadLetter: new Codec(deadLetterMessage),
} as const;

export * from './batch-state.ts';
export * from './common.ts';
export * from './completion.ts';
export * from './dead-letter.ts';
export * from './progress.ts';
export * from './public.ts';
export * from './request.ts';
export * from './status.ts';
