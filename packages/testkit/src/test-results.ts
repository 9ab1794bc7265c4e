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

/** The workspaces pnpm-workspace.yaml names: every folder under packages/ and services/, and helm/. */
async function workspaceDirs(root: string): Promise<string[]> {
  const dirs = [join(root, 'helm')];
  for (const group of ['packages', 'services']) {
    for (const name of await readdir(join(root, group))) dirs.push(join(root, group, name));
  }
  return dirs;
}

/** Deletes every workspace's .test-results folder. */
export async function clearResults(root: string): Promise<void> {
  for (const dir of await workspaceDirs(root)) {
    await rm(join(dir, '.test-results'), { recursive: true, force: true });
  }
}

/** Adds up the JSON reports every workspace's vitest run wrote to .test-results/vitest.json. */
export async function summariseResults(root: string): Promise<TestSummary> {
  const summary: TestSummary = { workspaces: 0, files: 0, passed: 0, failed: 0 };
  for (const dir of await workspaceDirs(root)) {
    let report: VitestJson;
    try {
      report = JSON.parse(await readFile(join(dir, '.test-results', 'vitest.json'), 'utf8'));
    } catch {
      // A workspace without tests writes no report; turbo's exit code covers one whose run crashed.
      continue;
    }
    summary.workspaces += 1;
    summary.files += report.testResults.length;
    summary.passed += report.numPassedTests;
    summary.failed += report.numFailedTests;
  }
  return summary;
}
