import { ConfigError } from '@sluice/config';

/**
 * Runs a service's main function. Bad configuration prints every problem and exits 1 before anything starts;
 * any other start-up failure is printed with its cause chain and exits 1.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else {
      process.stderr.write(`${name}: start-up failed: ${describe(error)}\n`);
    }
    process.exit(1);
  });
}

function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current !== undefined && parts.length < 5) {
    parts.push(current instanceof Error ? `${current.name}: ${current.message}` : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\n  caused by ');
}
