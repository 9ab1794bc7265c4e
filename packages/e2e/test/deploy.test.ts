import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  healthcheck?: unknown;
}

/** Every variable the services' configurations declare (the shared shapes and each service's own). */
async function knownVariables(): Promise<Set<string>> {
  const names = new Set<string>();
  const sources = [
    join(repoRoot(), 'packages', 'config', 'src', 'index.ts'),
    ...['ingress', 'batch-worker', 'aggregator', 'delivery'].map((s) =>
      join(repoRoot(), 'services', s, 'src', 'config.ts'),
    ),
  ];
  for (const file of sources) {
    for (const match of (await readFile(file, 'utf8')).matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm))
      names.add(match[1] as string);
  }
  return names;
}

describe('docker-compose.yml', () => {
  const load = async () => {
    const { parse } = await import('yaml');
    return parse(await readFile(join(repoRoot(), 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, ComposeService>;
    };
  };

  it('declares Kafka, provisioning, the four services, a demo upstream, and the profiles', async () => {
    const { services } = await load();
    for (const name of [
      'kafka',
      'provision',
      'ingress',
      'batch-worker',
      'aggregator',
      'delivery',
      'demo-upstream',
    ]) {
      expect(services[name], name).toBeDefined();
      expect(services[name]?.profiles, name).toBeUndefined();
    }
    expect(services.jaeger?.profiles).toEqual(['observability']);
    expect(services.prometheus?.profiles).toEqual(['observability']);
    expect(services.grafana?.profiles).toEqual(['observability']);
    expect(services.redis?.profiles).toEqual(['redis']);
    expect(services.kafka?.healthcheck).toBeDefined();
    expect(services.kafka?.environment?.KAFKA_ADVERTISED_LISTENERS).toMatch(
      /HOST:\/\/localhost:9092,INTERNAL:\/\/kafka:29092/,
    );
  });

  it('resolves every build context, volume, dependency, port and variable', async () => {
    const { services } = await load();
    const known = await knownVariables();
    const published = new Set<string>();
    for (const [name, service] of Object.entries(services)) {
      expect(
        service.image !== undefined || service.build !== undefined,
        `${name} has an image or a build`,
      ).toBe(true);
      if (service.build !== undefined) {
        expect(
          existsSync(join(repoRoot(), service.build.context, service.build.dockerfile)),
          `${name} dockerfile`,
        ).toBe(true);
        const target = service.build.args?.SERVICE;
        expect(
          existsSync(join(repoRoot(), 'services', target ?? '(none)', 'package.json')),
          `${name} builds ${target}`,
        ).toBe(true);
      }
      for (const volume of service.volumes ?? []) {
        const [host] = volume.split(':');
        if (host?.startsWith('.'))
          expect(existsSync(join(repoRoot(), host)), `${name} volume ${host}`).toBe(true);
      }
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(services[dependency], `${name} depends on ${dependency}`).toBeDefined();
      }
      for (const port of service.ports ?? []) {
        const host = port.split(':')[0] as string;
        expect(published.has(host), `host port ${host} published twice`).toBe(false);
        published.add(host);
      }
      if (service.build !== undefined) {
        for (const variable of Object.keys(service.environment ?? {})) {
          expect(known.has(variable), `${name}: ${variable} is a variable the services read`).toBe(true);
        }
      }
    }
    // The OTLP endpoint the services export to and the upstream of the compose gateway file are declared.
    expect(services.ingress?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
    const gateway = await readFile(join(repoRoot(), 'deploy', 'gateway.compose.yaml'), 'utf8');
    for (const host of gateway.matchAll(/url: http:\/\/([a-z-]+):\d+/g))
      expect(services[host[1] as string], host[1]).toBeDefined();
  });
});

describe('the Dockerfile', () => {
  it('builds one service per build arg: multi-stage, pruned, production dependencies, Node 24, non-root, node under tini', async () => {
    const dockerfile = await readFile(join(repoRoot(), 'Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=24\./m);
    expect(dockerfile).toContain(`turbo prune "@sluice/$\{SERVICE}" --docker`);
    expect(dockerfile).toMatch(/deploy --prod/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
  });
});
