import type { RouteConfig } from '@sluice/gateway-config';

/** Round robin over a route's targets. */
export class TargetPicker {
  readonly #next = new Map<string, number>();

  pick(routeName: string, route: RouteConfig): string {
    const index = this.#next.get(routeName) ?? 0;
    const target = route.upstream.targets[index % route.upstream.targets.length]?.url as string;
    this.#next.set(routeName, index + 1);
    return target;
  }
}
