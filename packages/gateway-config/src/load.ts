import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { type GatewayConfig, gatewayConfigSchema } from './schema.ts';

export class GatewayConfigError extends Error {
  readonly problems: string[];

  constructor(source: string, problems: string[], options: { cause?: unknown } = {}) {
    super(`invalid gateway configuration ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`, options);
    this.name = 'GatewayConfigError';
    this.problems = problems;
  }
}

export interface LoadedGatewayConfig {
  config: GatewayConfig;
  /** Hash of the file's text: replicas that run the same file report the same version. */
  version: string;
}

/** Parses and validates the gateway file's text; every problem is reported with its path. */
export function parseGatewayConfig(text: string, source = '(text)'): LoadedGatewayConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (cause) {
    throw new GatewayConfigError(source, [`not valid YAML: ${(cause as Error).message}`], { cause });
  }
  const parsed = gatewayConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new GatewayConfigError(
      source,
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return { config: parsed.data, version: configVersion(text) };
}

export async function loadGatewayConfigFile(path: string): Promise<LoadedGatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new GatewayConfigError(path, [`cannot be read: ${(cause as Error).message}`], { cause });
  }
  return parseGatewayConfig(text, path);
}

export function configVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
