import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promtoolPath, repoRoot } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';

/** Every instrument the services create, as Prometheus names (counters _total, histograms _bucket/_count/_sum). */
async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>(['target_info']);
  const roots = ['services', 'packages'].map((dir) => join(repoRoot(), dir));
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name === 'test') continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (path.endsWith('.ts')) files.push(path);
    }
  };
  for (const root of roots) await walk(root);
  const pattern = /create(Counter|Histogram|ObservableGauge|Gauge|UpDownCounter)\(\s*'([a-z0-9_.]+)'/g;
  for (const file of files) {
    for (const match of (await readFile(file, 'utf8')).matchAll(pattern)) {
      const base = (match[2] as string).replaceAll('.', '_');
      if (match[1] === 'Counter') names.add(`${base}_total`);
      else if (match[1] === 'Histogram')
        for (const suffix of ['_bucket', '_count', '_sum']) names.add(`${base}${suffix}`);
      else names.add(base);
    }
  }
  return names;
}

describe('the Grafana dashboard', () => {
  it('queries only metrics the services export, and answers the questions it is for', async () => {
    const dashboard = JSON.parse(
      await readFile(join(repoRoot(), 'deploy', 'grafana', 'dashboards', 'sluice.json'), 'utf8'),
    ) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const exported = await exportedMetricNames();
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        for (const match of target.expr.matchAll(/\b((?:sluice|http)_[a-z0-9_]+)\b/g)) {
          if (!/_(name|code|type|route|target|status|group_name|method)$/.test(match[1] as string))
            used.add(match[1] as string);
        }
      }
    }
    const unknown = [...used].filter((name) => !exported.has(name));
    expect(unknown).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
    const titles = dashboard.panels.map((panel) => panel.title.toLowerCase()).join(' | ');
    for (const question of [
      'throughput in',
      'throughput out',
      'lag',
      'accept latency',
      'end-to-end latency',
      'errors by class',
      'retries and dead letters',
      'upstream health per target',
    ]) {
      expect(titles).toContain(question);
    }
  });
});

describe('the Prometheus configuration', () => {
  it('passes promtool check config', () => {
    const result = spawnSync(
      promtoolPath(),
      ['check', 'config', join(repoRoot(), 'deploy', 'prometheus', 'prometheus.yml')],
      {
        encoding: 'utf8',
      },
    );
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });
});
