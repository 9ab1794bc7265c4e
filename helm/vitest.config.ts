import { sluiceVitestConfig } from '@sluice/testkit/vitest';

export default sluiceVitestConfig({ testTimeoutMs: 600_000 });
