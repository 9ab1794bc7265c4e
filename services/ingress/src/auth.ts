import { createHash, timingSafeEqual } from 'node:crypto';
import type { GatewayConfig } from '@sluice/gateway-config';
import type { NextFunction, Request, Response } from 'express';
import { HttpProblem } from './problems.ts';

export type Principal =
  | { scope: 'tenant'; tenant: string; keyId: string }
  | { scope: 'admin'; keyId: string };

interface StoredKey {
  digest: Buffer;
  principal: Principal;
}

/**
 * Maps bearer keys to principals. Keys are held only as SHA-256 digests; a presented key is hashed and its
 * digest compared in constant time with the stored digest found for it, so neither the key nor the stored
 * hashes leak through timing. Keys never reach a log: only the key's id does.
 */
export class Authenticator {
  readonly #keys = new Map<string, StoredKey>();

  constructor(config: GatewayConfig) {
    for (const [tenant, entry] of Object.entries(config.tenants)) {
      for (const key of entry.apiKeys) {
        this.#add(key.sha256, { scope: 'tenant', tenant, keyId: key.id });
      }
    }
    for (const key of config.admins?.apiKeys ?? []) this.#add(key.sha256, { scope: 'admin', keyId: key.id });
  }

  #add(hex: string, principal: Principal): void {
    this.#keys.set(hex, { digest: Buffer.from(hex, 'hex'), principal });
  }

  /** The principal of an Authorization header, or undefined for a missing, malformed or unknown key. */
  authenticate(authorization: string | undefined): Principal | undefined {
    const match = /^Bearer\s+([\x21-\x7e]{8,512})$/i.exec(authorization?.trim() ?? '');
    if (match === null) return undefined;
    const digest = createHash('sha256')
      .update(match[1] ?? '', 'utf8')
      .digest();
    const stored = this.#keys.get(digest.toString('hex'));
    if (stored === undefined || !timingSafeEqual(stored.digest, digest)) return undefined;
    return stored.principal;
  }
}

const challenge = { 'www-authenticate': 'Bearer realm="sluice"' };

/** Requires a key of the given scope; a tenant endpoint refuses admin keys and vice versa. */
export function requireScope(authenticator: () => Authenticator, scope: Principal['scope']) {
  return (req: Request, res: Response, next: NextFunction) => {
    const principal = authenticator().authenticate(req.headers.authorization);
    if (principal === undefined) {
      next(new HttpProblem('unauthenticated', { headers: challenge }));
      return;
    }
    if (principal.scope !== scope) {
      next(new HttpProblem('forbidden', { detail: `this endpoint needs a ${scope} key` }));
      return;
    }
    res.locals.principal = principal;
    next();
  };
}

/** The tenant of an authenticated tenant request. */
export function tenantOf(res: Response): string {
  const principal = res.locals.principal as Principal | undefined;
  if (principal?.scope !== 'tenant') throw new HttpProblem('forbidden');
  return principal.tenant;
}

/** The id (never the key) of the authenticated key, for audit fields such as who redrove a request. */
export function keyIdOf(res: Response): string {
  const principal = res.locals.principal as Principal | undefined;
  if (principal === undefined) throw new HttpProblem('unauthenticated');
  return principal.keyId;
}
