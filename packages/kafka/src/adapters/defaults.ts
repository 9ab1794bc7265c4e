/** Producer settings both adapters share, so that benchmarks compare the clients and not their settings. */
export const producerDefaults = {
  lingerMs: 2,
  maxBatchRecords: 1_000,
} as const;
