import { sluiceVitestConfig } from './src/vitest-config.ts';

export default sluiceVitestConfig({ kafka: true });
