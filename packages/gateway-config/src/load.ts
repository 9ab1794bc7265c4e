import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
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
  /** Hash of the files' text: replicas that run the same files report the same version. */
  version: string;
}

/**
 * The secrets file: what a deployment keeps in a Secret rather than a ConfigMap. Its tenants' API-key hashes and
 * webhook secrets, and the admins' key hashes, are merged into the gateway file's tenants before validation.
 */
const secretsSchema = z.strictObject({
  tenants: z
    .record(
      z.string(),
      z.strictObject({ apiKeys: z.array(z.unknown()).optional(), webhookSecret: z.string().optional() }),
    )
    .default({}),
  admins: z.strictObject({ apiKeys: z.array(z.unknown()) }).optional(),
});

function parseYamlText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (cause) {
    throw new GatewayConfigError(source, [`not valid YAML: ${(cause as Error).message}`], { cause });
  }
}

/**
 * Parses and validates the gateway file's text, merged with the secrets file's when given; every problem is
 * reported with its path.
 */
export function parseGatewayConfig(
  text: string,
  source = '(text)',
  secrets?: { text: string; source: string },
): LoadedGatewayConfig {
  let raw = parseYamlText(text, source);
  if (secrets !== undefined)
    raw = mergeSecrets(raw, parseYamlText(secrets.text, secrets.source), secrets.source);
  const parsed = gatewayConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new GatewayConfigError(
      secrets === undefined ? source : `${source} with ${secrets.source}`,
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return { config: parsed.data, version: configVersion(text + (secrets?.text ?? '')) };
}

function mergeSecrets(raw: unknown, secretsRaw: unknown, source: string): unknown {
  const secrets = secretsSchema.safeParse(secretsRaw ?? {});
  if (!secrets.success) {
    throw new GatewayConfigError(
      source,
      secrets.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  if (raw === null || typeof raw !== 'object') return raw;
  const base = raw as { tenants?: Record<string, Record<string, unknown>>; admins?: unknown };
  const tenants = { ...(base.tenants ?? {}) };
  for (const [id, secret] of Object.entries(secrets.data.tenants)) {
    if (tenants[id] === undefined) {
      throw new GatewayConfigError(source, [`tenants.${id}: not a tenant of the gateway file`]);
    }
    tenants[id] = { ...tenants[id], ...secret };
  }
  return { ...base, tenants, ...(secrets.data.admins !== undefined ? { admins: secrets.data.admins } : {}) };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new GatewayConfigError(path, [`cannot be read: ${(cause as Error).message}`], { cause });
  }
}

/** Loads the gateway file and, when a path is given, the secrets file merged into it. */
export async function loadGatewayConfigFile(
  path: string,
  secretsPath?: string,
): Promise<LoadedGatewayConfig> {
  const text = await readText(path);
  const secrets =
    secretsPath === undefined ? undefined : { text: await readText(secretsPath), source: secretsPath };
  return parseGatewayConfig(text, path, secrets);
}

export function configVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
