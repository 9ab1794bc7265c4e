import { type BuiltTool, ensureTool, toolBinary } from './tools.ts';

/** Helm 3, built once from the Go module proxy into .cache/tools (no other download site is reachable). */
export const helmVersion = 'v3.22.0';

const helm: BuiltTool = { command: 'helm', version: helmVersion, source: { go: 'helm.sh/helm/v3/cmd/helm' } };

export function helmBinary(): string {
  return toolBinary(helm);
}

export function ensureHelm(log: (line: string) => void = console.log): string {
  return ensureTool(helm, log);
}
