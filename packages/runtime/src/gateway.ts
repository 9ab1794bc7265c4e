import {
  type GatewayConfig,
  GatewayConfigWatcher,
  type LoadedGatewayConfig,
  loadGatewayConfigFile,
} from '@sluice/gateway-config';
import type { ServiceContext } from './kafka-service.ts';

export interface GatewayConfigSettings {
  SLUICE_GATEWAY_CONFIG: string;
  SLUICE_GATEWAY_SECRETS?: string | undefined;
  CONFIG_POLL_INTERVAL_MS: number;
}

/**
 * Loads the gateway file (an invalid file stops the start-up) and follows it: a valid change is applied
 * without a restart and announced to `onApplied`; an invalid one is logged, counted and ignored. The running
 * version is in /readyz and in the `sluice.config.info` metric, so an operator sees when all replicas agree.
 */
export async function watchGatewayConfig(
  ctx: ServiceContext,
  settings: GatewayConfigSettings,
  onApplied: (config: GatewayConfig, previous: GatewayConfig) => void = () => {},
): Promise<{ current(): LoadedGatewayConfig }> {
  const initial = await loadGatewayConfigFile(
    settings.SLUICE_GATEWAY_CONFIG,
    settings.SLUICE_GATEWAY_SECRETS,
  );
  const reloads = ctx.telemetry.meter.createCounter('sluice.config.reloads', {
    unit: '{reload}',
    description: 'Changes of the gateway file seen, by outcome (applied or rejected).',
  });
  const watcher = new GatewayConfigWatcher(
    settings.SLUICE_GATEWAY_CONFIG,
    initial,
    {
      intervalMs: settings.CONFIG_POLL_INTERVAL_MS,
      onApplied: (loaded, previous) => {
        reloads.add(1, { outcome: 'applied' });
        ctx.logger.info(
          { configVersion: loaded.version, previousVersion: previous.version },
          'gateway configuration applied',
        );
        onApplied(loaded.config, previous.config);
      },
      onRejected: (error) => {
        reloads.add(1, { outcome: 'rejected' });
        ctx.logger.error(
          { problems: error.problems, configVersion: watcher.current().version },
          'gateway configuration rejected; the running one stays',
        );
      },
    },
    settings.SLUICE_GATEWAY_SECRETS,
  );
  ctx.telemetry.meter
    .createObservableGauge('sluice.config.info', {
      description: 'The gateway configuration this instance runs (value 1, version as a label).',
    })
    .addCallback((result) => result.observe(1, { version: watcher.current().version }));
  ctx.readiness.info('configVersion', () => watcher.current().version);
  ctx.logger.info({ configVersion: initial.version }, 'gateway configuration loaded');
  watcher.start();
  ctx.shutdown.add('close', 'stop watching the gateway file', async () => watcher.stop());
  return watcher;
}
