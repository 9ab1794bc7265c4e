import { fileURLToPath } from 'node:url';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

export interface SluiceVitestOptions {
  /** Start (or reuse, via KAFKA_BROKERS) one real broker for the whole run and inject its address. */
  kafka?: boolean;
  testTimeoutMs?: number;
}

// Workspace packages resolve to their TypeScript sources under this export condition.
const conditions = ['sluice-source', 'module', 'node', 'import', 'default'];

/** The vitest configuration every workspace uses, so that timeouts, reporters and resolution agree. */
export function sluiceVitestConfig(options: SluiceVitestOptions = {}): ViteUserConfig {
  return defineConfig({
    resolve: { conditions },
    // Vitest hands the SSR conditions to Node as --conditions for dependencies it does not transform; 'import'
    // there would make Node's require() of a dual package load its ESM build (express's is-promise breaks).
    ssr: { resolve: { conditions: ['sluice-source', 'node'], externalConditions: ['sluice-source'] } },
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: options.testTimeoutMs ?? 60_000,
      hookTimeout: 180_000,
      teardownTimeout: 60_000,
      globalSetup: options.kafka ? [fileURLToPath(new URL('./kafka-global-setup.ts', import.meta.url))] : [],
      // Machine-readable results per workspace, summed by the test command into one closing line.
      reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }]],
      // Tests that start processes and brokers share two cores; more parallelism only adds timeouts.
      maxWorkers: 2,
    },
  });
}
