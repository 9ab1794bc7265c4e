import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface TestSummary {
  workspaces: number;
  files: number;
  passed: number;
  failed: number;
}

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numTotalTestSuites: number;
  testResults: unknown[];
}

const workspaceGroups = ['packages', 'services'];

/** Deletes every workspace's .test-results folder. */
export async function clearResults(root: string): Promise<void> {
  for (const group of workspaceGroups) {
    for (const name of await readdir(join(root, group))) {
      await rm(join(root, group, name, '.test-results'), { recursive: true, force: true });
    }
  }
}

/** Adds up the JSON reports every workspace's vitest run wrote to .test-results/vitest.json. */
export async function summariseResults(root: string): Promise<TestSummary> {
  const summary: TestSummary = { workspaces: 0, files: 0, passed: 0, failed: 0 };
  for (const group of workspaceGroups) {
    for (const name of await readdir(join(root, group))) {
      let report: VitestJson;
      try {
        report = JSON.parse(await readFile(join(root, group, name, '.test-results', 'vitest.json'), 'utf8'));
      } catch {
        continue;
      }
      summary.workspaces += 1;
      summary.files += report.testResults.length;
      summary.passed += report.numPassedTests;
      summary.failed += report.numFailedTests;
    }
  }
  return summary;
}
