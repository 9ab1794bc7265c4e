export { generateApiKey, generateWebhookSecret, hashApiKey } from './keys.ts';
export {
  configVersion,
  GatewayConfigError,
  type LoadedGatewayConfig,
  loadGatewayConfigFile,
  parseGatewayConfig,
} from './load.ts';
export {
  type ApiKeyEntry,
  balancerPolicies,
  type CoalesceConfig,
  type GatewayConfig,
  gatewayConfigSchema,
  type HttpMethod,
  httpMethods,
  type Limits,
  type RateConfig,
  type RouteConfig,
  routeNamed,
  type TargetConfig,
  type TenantConfig,
  type UpstreamConfig,
} from './schema.ts';
export { GatewayConfigWatcher, type WatchOptions } from './watch.ts';
