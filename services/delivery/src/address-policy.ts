import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

export class ForbiddenAddressError extends Error {
  readonly code = 'SLUICE_FORBIDDEN_ADDRESS';

  constructor(host: string, address: string, range: string) {
    super(`${host} resolves to ${address} (${range}), which callbacks may not reach`);
    this.name = 'ForbiddenAddressError';
  }
}

/**
 * Whether a callback may connect to this address: only public unicast addresses, so that a tenant cannot make
 * Sluice call loopback, private networks, link-local addresses (the cloud metadata service at 169.254.169.254
 * among them), carrier-grade NAT, multicast or reserved space. IPv4-mapped IPv6 addresses are judged as IPv4.
 */
export function addressRange(address: string): string {
  if (!ipaddr.isValid(address)) return 'invalid';
  return ipaddr.process(address).range();
}

export function isPublicAddress(address: string): boolean {
  return addressRange(address) === 'unicast';
}

/** What the operator allows callbacks to reach beyond public addresses (the gateway file's `callbacks`). */
export interface CallbackNetworks {
  allowPrivateNetworks: boolean;
  /** CIDR networks allowed although not public. */
  allowNetworks: readonly string[];
}

/** Cloud metadata services: refused even with allowPrivateNetworks, unless a listed network covers them. */
const metadataAddresses = new Set(
  ['169.254.169.254', 'fd00:ec2::254', '169.254.170.2'].map((address) =>
    ipaddr.parse(address).toNormalizedString(),
  ),
);

/** Whether a callback may connect to `address` under the operator's policy; the range that refuses it if not. */
export function callbackAddressVerdict(
  address: string,
  policy: CallbackNetworks,
): { allowed: true } | { allowed: false; range: string } {
  if (!ipaddr.isValid(address)) return { allowed: false, range: 'invalid' };
  const parsed = ipaddr.process(address);
  for (const network of policy.allowNetworks) {
    const [base, bits] = ipaddr.parseCIDR(network);
    if (base.kind() === parsed.kind() && parsed.match(base, bits)) return { allowed: true };
  }
  const range = parsed.range();
  if (range === 'unicast') return { allowed: true };
  if (policy.allowPrivateNetworks && !metadataAddresses.has(parsed.toNormalizedString())) {
    return { allowed: true };
  }
  return {
    allowed: false,
    range: metadataAddresses.has(parsed.toNormalizedString()) ? 'cloudMetadata' : range,
  };
}

/**
 * A DNS lookup for outgoing connections that refuses addresses the policy does not allow. It runs at connect time, on the
 * address actually connected to, so a name that resolves to a public address when checked and to a private one
 * when used (DNS rebinding) is still refused.
 */
export function guardedLookup(policy: () => CallbackNetworks): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const list = addresses as LookupAddress[];
      const networks = policy();
      for (const entry of list) {
        const verdict = callbackAddressVerdict(entry.address, networks);
        if (!verdict.allowed) {
          callback(new ForbiddenAddressError(hostname, entry.address, verdict.range), '', 0);
          return;
        }
      }
      if (options.all) {
        (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
        return;
      }
      const first = list[0];
      if (first === undefined) {
        callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
        return;
      }
      callback(null, first.address, first.family);
    });
  };
}
