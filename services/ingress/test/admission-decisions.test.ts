import { describe, expect, it } from 'vitest';
import { AcknowledgementBacklog, loadDecision, rateLimitHeaders, TenantShares } from '../src/admission.ts';

describe('loadDecision', () => {
  const base = { shedLag: 100, rejectLag: 1_000, tenantShare: 0.5, activeTenants: 2 };

  it('accepts below the shed bound and while the lag is unknown', () => {
    expect(loadDecision({ ...base, lag: 99, tenantShare: 1, activeTenants: 1 })).toBe('accept');
    expect(loadDecision({ ...base, lag: undefined })).toBe('accept');
  });

  it('sheds only tenants above their fair share between the bounds', () => {
    expect(loadDecision({ ...base, lag: 100, tenantShare: 0.9 })).toBe('shed');
    expect(loadDecision({ ...base, lag: 500, tenantShare: 0.1 })).toBe('accept');
    // Equal tenants are not "heavy"; a lone tenant is its own fair share.
    expect(loadDecision({ ...base, lag: 500, tenantShare: 0.5 })).toBe('accept');
    expect(loadDecision({ ...base, lag: 500, tenantShare: 1, activeTenants: 1 })).toBe('accept');
    expect(loadDecision({ ...base, lag: 500, tenantShare: 0.45, activeTenants: 3 })).toBe('shed');
  });

  it('rejects everyone at and above the reject bound', () => {
    expect(loadDecision({ ...base, lag: 1_000, tenantShare: 0 })).toBe('reject');
  });
});

describe('TenantShares', () => {
  it('gives each tenant its share of recent traffic, decaying with the half-life', () => {
    const shares = new TenantShares(1_000);
    shares.note('heavy', 90, 0);
    shares.note('light', 10, 0);
    expect(shares.shareOf('heavy', 0)).toEqual({ share: 0.9, active: 2 });
    // One request is enough to count as active for two half-lives.
    shares.note('rare', 1, 0);
    expect(shares.shareOf('heavy', 1_900).active).toBe(3);
    expect(shares.shareOf('heavy', 2_100).active).toBe(2);
    // The heavy tenant stops; the light one keeps sending: shares turn.
    shares.note('light', 10, 3_000);
    const later = shares.shareOf('heavy', 3_000);
    expect(later.share).toBeCloseTo(90 / 8 / (90 / 8 + 10 / 8 + 1 / 8 + 10), 5);
    expect(shares.shareOf('nobody', 3_000).share).toBe(0);
    // Long quiet: everyone is forgotten.
    expect(shares.shareOf('light', 60_000)).toEqual({ share: 0, active: 0 });
  });
});

describe('rateLimitHeaders', () => {
  const rule = { requestsPerSecond: 2, burst: 10 };

  it('reports limit, remaining, reset in seconds and the policy, with Retry-After only when refused', () => {
    const allowed = { allowed: true, limit: 10, remaining: 4, resetMs: 2_500, retryAfterMs: 0 };
    expect(rateLimitHeaders(allowed, rule)).toEqual({
      'ratelimit-limit': '10',
      'ratelimit-remaining': '4',
      'ratelimit-reset': '3',
      'ratelimit-policy': '10;w=5',
    });
    const refused = { allowed: false, limit: 10, remaining: 0, resetMs: 5_000, retryAfterMs: 200 };
    expect(rateLimitHeaders(refused, rule)['retry-after']).toBe('1');
    expect(rateLimitHeaders({ ...refused, retryAfterMs: 1_600 }, rule)['retry-after']).toBe('2');
  });
});

describe('AcknowledgementBacklog', () => {
  const deferred = () => {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    return { promise, resolve, reject };
  };

  it('reports how long the oldest submission still waiting has waited, whichever settles first', async () => {
    let now = 1_000;
    const backlog = new AcknowledgementBacklog(() => now);
    expect(backlog.oldestWaitMs()).toBe(0);
    const first = deferred();
    const second = deferred();
    const tracked = [backlog.track(first.promise), backlog.track(second.promise).catch(() => 'failed')];
    now = 1_300;
    expect(backlog.oldestWaitMs()).toBe(300);
    // The newer one settles first (a failed produce counts as settled too): the oldest is still waiting.
    second.reject(new Error('broker gone'));
    await tracked[1];
    now = 1_500;
    expect(backlog.oldestWaitMs()).toBe(500);
    first.resolve();
    await tracked[0];
    expect(backlog.oldestWaitMs()).toBe(0);
  });

  it('passes the acknowledgement through, and its failure', async () => {
    const backlog = new AcknowledgementBacklog();
    await expect(backlog.track(Promise.resolve(7))).resolves.toBe(7);
    await expect(backlog.track(Promise.reject(new Error('nack')))).rejects.toThrow('nack');
    expect(backlog.oldestWaitMs()).toBe(0);
  });
});
