import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { ensureTool, infernoFlamegraph } from '@sluice/testkit';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const frameName = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')
    .replace(/.*\/(services|packages)\//, '$1/');
  const name = functionName || '(anonymous)';
  return (file ? `${name} ${file}:${lineNumber + 1}` : name).replaceAll(';', ',');
};

/**
 * A V8 CPU profile (node --cpu-prof) as collapsed stacks (one line per stack, `root;…;leaf count`, what
 * flame-graph tools read), and the busiest functions by own time. Idle time is left out (it is not cost), and
 * so is module loading (start-up, and the first use of a lazily required module): the profile covers the
 * process's whole life, and what matters is the work under load.
 */
export async function collapse(
  profilePath: string,
): Promise<{ folded: string; top: string[]; busyMs: number }> {
  const profile = JSON.parse(await readFile(profilePath, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const stacks = new Map<number, string>();
  const stackOf = (id: number): string => {
    const known = stacks.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id) as ProfileNode;
    const up = parent.get(id);
    const above =
      up === undefined || byId.get(up)?.callFrame.functionName === '(root)' ? '' : `${stackOf(up)};`;
    const stack = `${above}${frameName(node)}`;
    stacks.set(id, stack);
    return stack;
  };
  const counts = new Map<string, number>();
  const own = new Map<string, number>();
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id) as ProfileNode;
    if (node.callFrame.functionName === '(idle)') return;
    const stack = stackOf(id);
    if (stack.includes('node:internal/modules/')) return;
    const micros = profile.timeDeltas[i] ?? 0;
    busyUs += micros;
    counts.set(stack, (counts.get(stack) ?? 0) + 1);
    own.set(frameName(node), (own.get(frameName(node)) ?? 0) + micros);
  });
  const folded = [...counts].map(([stack, count]) => `${stack} ${count}`).join('\n');
  const top = [...own]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([name, micros]) => `${((100 * micros) / busyUs).toFixed(1).padStart(5)}%  ${name}`);
  return { folded: `${folded}\n`, top, busyMs: busyUs / 1000 };
}

/** Renders collapsed stacks as an SVG flame graph with inferno (built once into .cache/tools). */
export async function renderFlameGraph(folded: string, svgPath: string, title: string): Promise<void> {
  const binary = ensureTool(infernoFlamegraph);
  const child = spawn(binary, ['--title', title, '--countname', 'samples', '--width', '1600'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.end(folded);
  const chunks: Buffer[] = [];
  for await (const chunk of child.stdout) chunks.push(chunk as Buffer);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`inferno-flamegraph exited ${code}`);
  await writeFile(svgPath, Buffer.concat(chunks));
}
