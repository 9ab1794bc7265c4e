import { requestStatuses, type StatusMessage, supersedes } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';
import { rateLimitDecision } from '../src/index.ts';
import { encodeStatus, gcraLua, supersedesLua } from '../src/redis-scripts.ts';
import { redisServerPerFile } from './redis-fixtures.ts';
import { status } from './store-contract.ts';

const redis = redisServerPerFile();

// The decisions run on the server exactly as the store's scripts hold them, over every case at once.
const supersedesCases = `${supersedesLua}
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = supersedes(ARGV[i], ARGV[i + 1]) and '1' or '0' end
return out
`;

const gcraCases = `${gcraLua}
local out = {}
for i = 1, #ARGV, 5 do
  local allowed, newTat, remaining, reset, retryAfter = gcra(
    tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
  out[#out + 1] = table.concat({allowed and '1' or '0', number(newTat), number(remaining), number(reset),
    number(retryAfter)}, ' ')
end
return out
`;

describe('the Redis store’s Lua against the TypeScript reference', () => {
  it('decides which status supersedes exactly as the contracts’ supersedes, over every pair of a grid', async () => {
    const variants: StatusMessage[] = [];
    for (const generation of [undefined, 0, 1, 2]) {
      for (const state of requestStatuses) {
        for (const updatedAt of [1_000, 1_500, 1_700_000_000_123]) {
          const base = status({ status: state, updatedAt });
          variants.push(generation === undefined ? base : { ...base, generation });
        }
      }
    }
    const pairs = variants.flatMap((next) => variants.map((current) => [next, current] as const));
    const args = pairs.flatMap(([next, current]) => [encodeStatus(next), encodeStatus(current)]);
    const fromLua = (await redis.client().eval(supersedesCases, 0, ...args)) as string[];
    const fromTypeScript = pairs.map(([next, current]) => (supersedes(next, current) ? '1' : '0'));
    expect(pairs.length).toBe(72 * 72);
    expect(fromLua).toEqual(fromTypeScript);
    // The grid holds both answers many times over, so agreement is not agreement on a constant.
    expect(fromTypeScript.filter((answer) => answer === '1').length).toBeGreaterThan(1_000);
    expect(fromTypeScript.filter((answer) => answer === '0').length).toBeGreaterThan(1_000);
  });

  it('computes GCRA decisions and header values identical to rateLimitDecision, to the last bit', async () => {
    const rules = [
      { ratePerSecond: 10, burst: 5 },
      { ratePerSecond: 3, burst: 4 },
      { ratePerSecond: 0.001, burst: 20 },
      { ratePerSecond: 1_000, burst: 1 },
      { ratePerSecond: 7, burst: 3 },
      { ratePerSecond: 1000 / 3, burst: 100 },
      { ratePerSecond: 0.7, burst: 2 },
    ];
    const cases: Array<[number, number, number, number, number]> = [];
    for (const rule of rules) {
      const interval = 1000 / rule.ratePerSecond;
      for (const now of [0, 0.3, 1_000.123, 123_456.789, 86_400_000]) {
        const owed = [-500, 0, 0.0005, 0.5, interval, 2.5 * interval, rule.burst * interval];
        owed.push(rule.burst * interval + 0.002, rule.burst * interval - 0.0009, (rule.burst + 3) * interval);
        for (const ahead of owed) {
          for (const cost of [0, 1, 2, rule.burst, rule.burst + 1]) {
            cases.push([now + ahead, now, rule.ratePerSecond, rule.burst, cost]);
          }
        }
      }
    }
    const fromLua = (await redis.client().eval(gcraCases, 0, ...cases.flat().map(String))) as string[];
    const parsed = fromLua.map((line) => {
      const [allowed, newTat, remaining, resetMs, retryAfterMs] = line.split(' ');
      return {
        allowed: allowed === '1',
        newTat: Number(newTat),
        remaining: Number(remaining),
        resetMs: Number(resetMs),
        retryAfterMs: retryAfterMs === 'inf' ? Number.POSITIVE_INFINITY : Number(retryAfterMs),
      };
    });
    const fromTypeScript = cases.map(([tat, now, ratePerSecond, burst, cost]) => {
      const { limit: _, ...decision } = rateLimitDecision(tat, now, { ratePerSecond, burst }, cost);
      return decision;
    });
    expect(cases.length).toBe(rules.length * 5 * 10 * 5);
    expect(parsed).toEqual(fromTypeScript);
    expect(parsed.filter((decision) => decision.allowed).length).toBeGreaterThan(300);
    expect(parsed.filter((decision) => !decision.allowed).length).toBeGreaterThan(300);
  });
});
