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

/**
 * A DNS lookup for outgoing connections that refuses non-public addresses. It runs at connect time, on the
 * address actually connected to, so a name that resolves to a public address when checked and to a private one
 * when used (DNS rebinding) is still refused.
 */
export function guardedLookup(allowPrivateNetworks: () => boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const list = addresses as LookupAddress[];
      if (!allowPrivateNetworks()) {
        for (const entry of list) {
          if (!isPublicAddress(entry.address)) {
            callback(new ForbiddenAddressError(hostname, entry.address, addressRange(entry.address)), '', 0);
            return;
          }
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
