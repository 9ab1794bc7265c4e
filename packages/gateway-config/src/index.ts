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
  type GatewayConfig,
  gatewayConfigSchema,
  type HttpMethod,
  httpMethods,
  type Limits,
  type RouteConfig,
  type TargetConfig,
  type TenantConfig,
} from './schema.ts';
