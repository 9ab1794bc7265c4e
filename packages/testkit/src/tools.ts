import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheDir } from './paths.ts';

/** A command-line tool built once from a language registry into .cache/tools/bin (no other site is reachable). */
export interface BuiltTool {
  /** The command's name, as the build writes it. */
  command: string;
  version: string;
  /** `go`: the module path of the command, installed with `go install <path>@<version>`; `cargo`: the crate. */
  source: { go: string } | { cargo: string };
}

export function toolBinary(tool: BuiltTool): string {
  return join(cacheDir(), 'tools', 'bin', `${tool.command}-${tool.version}`);
}

/** The tool's binary, building it first if this checkout has not yet; fails loudly without the toolchain. */
export function ensureTool(tool: BuiltTool, log: (line: string) => void = console.log): string {
  const binary = toolBinary(tool);
  if (existsSync(binary)) return binary;
  const [toolchain, args, buildDir] =
    'go' in tool.source
      ? ['go', ['install', `${tool.source.go}@${tool.version}`], join(cacheDir(), 'tools', 'go-bin')]
      : [
          'cargo',
          ['install', '--locked', tool.source.cargo, '--version', tool.version.replace(/^v/, ''), '--root'],
          join(cacheDir(), 'tools', 'cargo'),
        ];
  const found = spawnSync('sh', ['-c', `command -v ${toolchain}`], { encoding: 'utf8' }).stdout.trim();
  if (found === '') throw new Error(`building ${tool.command} needs ${toolchain} on PATH`);
  log(`building ${tool.command} ${tool.version} with ${toolchain}; once, into .cache/tools`);
  const built = spawnSync(found, toolchain === 'cargo' ? [...args, buildDir] : args, {
    env: { ...process.env, GOBIN: buildDir },
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error(`${toolchain} ${args.join(' ')} failed`);
  mkdirSync(dirname(binary), { recursive: true });
  const output = toolchain === 'cargo' ? join(buildDir, 'bin', tool.command) : join(buildDir, tool.command);
  try {
    renameSync(output, binary);
  } catch (error) {
    throw new Error(`could not move ${tool.command} into ${binary}`, { cause: error });
  }
  return binary;
}

/** Open-loop HTTP load at fixed rates (the benchmarks'). */
export const vegeta: BuiltTool = {
  command: 'vegeta',
  version: 'v12.13.0',
  source: { go: 'github.com/tsenart/vegeta/v12' },
};

/** Flame graphs as SVG from collapsed stacks (`pnpm profile`). */
export const infernoFlamegraph: BuiltTool = {
  command: 'inferno-flamegraph',
  version: '0.12.8',
  source: { cargo: 'inferno' },
};
