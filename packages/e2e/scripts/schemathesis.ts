/**
 * Schemathesis against the ingress's served /openapi.json: it generates requests from the document (valid ones
 * and, in its coverage phase, invalid ones) and checks every answer against the same document. The four
 * services run as separate processes on a real broker with an echo upstream, so that requests complete and the
 * 200 documents (statuses with results, batches with items) are checked too.
 *
 *   pnpm schemathesis                                    (starts a broker unless KAFKA_BROKERS is set)
 *   SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_TIMEOUT_S=1200 pnpm schemathesis
 *   SCHEMATHESIS_ARGS='--seed 1 --report har' pnpm schemathesis
 *
 * Schemathesis is a Python tool: the first run creates a virtual environment in the ignored cache folder
 * (.cache/tools/schemathesis-venv) with the pinned version from PyPI (Python 3.11+; SCHEMATHESIS_PYTHON names
 * another interpreter); later runs reuse it. Exits with schemathesis's code (non-zero on any failed check or
 * failing warning), or 1 when the run exceeds its time bound (SCHEMATHESIS_TIMEOUT_S, default 600).
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, echo, startKafka } from '@sluice/testkit';
import { adminKey, startStack, tenantKeys } from '../src/harness.ts';

const version = '4.32.5';
/** What every answer is held to: no 5xx, and the status, content type, headers and body the document gives. */
const checks = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
];
const maxExamples = Number(process.env.SCHEMATHESIS_MAX_EXAMPLES ?? 50);
const timeoutMs = Number(process.env.SCHEMATHESIS_TIMEOUT_S ?? 600) * 1000;
const python = process.env.SCHEMATHESIS_PYTHON ?? 'python3';
/** More `st run` options, e.g. `--seed 1 --report har` (reports land in .cache/tools/schemathesis-run). */
const extraArgs = (process.env.SCHEMATHESIS_ARGS ?? '').split(' ').filter(Boolean);
const tools = join(cacheDir(), 'tools');
const venv = join(tools, 'schemathesis-venv');
const st = join(venv, 'bin', 'st');
/** The run's working folder: its settings, hooks and any reports. */
const workDir = join(tools, 'schemathesis-run');

/**
 * Schemathesis settings: a tenant's key for the API, the admin key for the admin operations; the run fails on
 * warnings that mean part of the document could not be tested (a $ref that does not resolve, a pattern or a
 * media type schemathesis cannot use), not only on failed checks.
 */
const config = `headers = { Authorization = "Bearer ${tenantKeys.acme}" }

[warnings]
fail-on = ["unresolvable_reference", "unsupported_regex", "missing_deserializer"]

[[operations]]
include-path-regex = "redrive"
headers = { Authorization = "Bearer ${adminKey}" }
`;

/**
 * Schemathesis hooks (Python). Route names come from the gateway file, not from the document, so a generated
 * route would almost always be unknown (404) and no request would reach the queue; every generated body names
 * the stack's route instead. Callbacks are dropped so that the delivery service never calls generated hosts.
 */
const hooks = `import schemathesis


def _realistic(item):
    if isinstance(item, dict):
        if isinstance(item.get("route"), str):
            item["route"] = "e2e"
        item.pop("callback", None)


@schemathesis.hook
def map_body(ctx, body):
    _realistic(body)
    if isinstance(body, dict) and isinstance(body.get("requests"), list):
        for item in body["requests"]:
            _realistic(item)
    return body
`;

/** Runs a command with inherited output; its exit code, or the captured stdout with `capture`. */
function run(
  command: string,
  args: string[],
  options: { capture?: boolean; timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', options.capture ? 'pipe' : 'inherit', 'inherit'],
    });
    let stdout = '';
    let timedOut = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
          }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout: error.message, timedOut });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 1 : 0), stdout, timedOut });
    });
  });
}

/** The pinned schemathesis in its own virtual environment, installed from PyPI on first use. */
async function ensureSchemathesis(): Promise<void> {
  const installed = await run(st, ['--version'], { capture: true });
  if (installed.code === 0 && installed.stdout.includes(`version ${version}`)) return;
  console.log(`schemathesis: installing ${version} into ${venv}`);
  await mkdir(tools, { recursive: true });
  const created = await run(python, ['-m', 'venv', '--clear', venv]);
  if (created.code !== 0)
    throw new Error(
      `${python} -m venv failed (${created.code}); schemathesis ${version} needs Python 3.11+ (SCHEMATHESIS_PYTHON)`,
    );
  const pip = await run(join(venv, 'bin', 'pip'), [
    'install',
    '--quiet',
    '--disable-pip-version-check',
    `schemathesis==${version}`,
  ]);
  if (pip.code !== 0) throw new Error(`pip install schemathesis==${version} failed (${pip.code})`);
}

const started = performance.now();
const laps: string[] = [];
const lap = (label: string) => {
  laps.push(`${label} at ${((performance.now() - started) / 1000).toFixed(1)} s`);
};

await ensureSchemathesis();
await mkdir(workDir, { recursive: true });
await writeFile(join(workDir, 'sluice_schemathesis_hooks.py'), hooks);
await writeFile(join(workDir, 'schemathesis.toml'), config);
lap('schemathesis ready');
const kafka = await startKafka();
lap(`Kafka ready (${kafka.source})`);
let exitCode = 1;
try {
  const stack = await startStack({ brokers: kafka.bootstrap, upstream: echo });
  lap('stack ready');
  try {
    const result = await run(
      st,
      [
        '--config-file',
        join(workDir, 'schemathesis.toml'),
        'run',
        `${stack.ingress}/openapi.json`,
        '--url',
        stack.ingress,
        '--checks',
        checks.join(','),
        '--max-examples',
        String(maxExamples),
        // Prefer: wait may hold a request for up to 60 s.
        '--request-timeout',
        '70',
        // Every run starts fresh, with no example database of earlier runs.
        '--generation-database',
        'none',
        '--no-color',
        ...extraArgs,
      ],
      { timeoutMs, cwd: workDir, env: { SCHEMATHESIS_HOOKS: 'sluice_schemathesis_hooks' } },
    );
    lap('schemathesis done');
    if (result.timedOut)
      console.error(`schemathesis: stopped after ${timeoutMs / 1000} s (SCHEMATHESIS_TIMEOUT_S)`);
    exitCode = result.timedOut ? 1 : result.code;
  } finally {
    await stack.stop();
  }
} finally {
  await kafka.stop();
}
lap('stopped');
console.log(`schemathesis ${version}: exit ${exitCode}; ${laps.join(', ')}`);
process.exit(exitCode);
