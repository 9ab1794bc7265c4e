import type { GatewayConfig, LoadedGatewayConfig } from '@sluice/gateway-config';
import { Authenticator } from './auth.ts';

/** The gateway configuration a request is served with, and what the ingress derives from it. */
export interface ActiveGateway {
  config: GatewayConfig;
  version: string;
  authenticator: Authenticator;
}

export function activateGateway(loaded: LoadedGatewayConfig): ActiveGateway {
  return { ...loaded, authenticator: new Authenticator(loaded.config) };
}
