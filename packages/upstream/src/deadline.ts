/**
 * The limit of one try of an outbound call (upstream, webhook, health check), which must only count time the
 * other side took. When this process's event loop is stalled (garbage collection, a burst of records, a busy
 * core), the timers phase runs before the poll phase that would read an answer which arrived in time; a plain
 * AbortSignal.timeout (or undici's headersTimeout) would then charge our own busy time to the other side and end
 * a good try as a timeout. Deferring the abort by one setImmediate lets the
 * pending socket I/O of that loop iteration be read first: an answer already here wins, a real hang still ends
 * at the limit. The abort reason is the TimeoutError DOMException that AbortSignal.timeout would give.
 */
export function tryDeadline(timeoutMs: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  let settled = false;
  const timer = setTimeout(() => {
    setImmediate(() => {
      if (!settled) controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
    });
  }, timeoutMs);
  return {
    signal: controller.signal,
    clear() {
      settled = true;
      clearTimeout(timer);
    },
  };
}
