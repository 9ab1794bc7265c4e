import { sluiceVitestConfig } from '@sluice/testkit/vitest';

export default sluiceVitestConfig({ kafka: true });
