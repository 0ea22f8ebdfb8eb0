/**
 * The reference meaning of name filters and policy rules, written from their definitions and
 * sharing no code with `prefix-filter.ts`, `service-filter.ts` or `route-policy.ts` (no
 * normalisation, no intersection).
 */
import type { PrefixList } from "../prefix-filter.js";
import type { ServiceKind } from "../service-filter.js";

/**
 * True when a prefix list lets `name` through: some `allow` prefix starts it (an absent
 * `allow` is the empty prefix: everything) and no `deny` prefix does. An absent list lets
 * everything through.
 */
export function naivePrefixAllows(list: PrefixList | undefined, name: string): boolean {
  if (list === undefined) return true;
  const allow = list.allow ?? [""];
  return allow.some((p) => name.startsWith(p)) && !(list.deny ?? []).some((p) => name.startsWith(p));
}

/** Anything with prefix lists per service kind: an `Offers` or a `RoutePolicyRule`. */
export interface ServiceLists {
  functions?: PrefixList | undefined;
  topics?: PrefixList | undefined;
  queues?: PrefixList | undefined;
}

const FIELD = { function: "functions", topic: "topics", queue: "queues" } as const;

/**
 * True when every element of `chain` lets `name` of `kind` through: what a route offers after
 * a cluster's `offers` and then each policy rule on its path (undefined elements, "no rule",
 * let everything through). A name any of them denies must never pass.
 */
export function naiveChainAllows(chain: readonly (ServiceLists | undefined | null)[], kind: ServiceKind, name: string): boolean {
  return chain.every((x) => x === undefined || x === null || naivePrefixAllows(x[FIELD[kind]], name));
}

/** The destination part of a policy rule: `{ allow?, deny? }` of exact cluster ids. */
export interface ClusterLists {
  clusters?: { allow?: readonly string[]; deny?: readonly string[] } | undefined;
}

/**
 * True when a rule lets routes to `destination` through: not in `clusters.deny`, and in
 * `clusters.allow` when that is given. An undefined rule lets everything through.
 */
export function naiveClusterAllowed(rule: ClusterLists | undefined | null, destination: string): boolean {
  const c = rule?.clusters;
  if (c === undefined) return true;
  return !(c.deny ?? []).includes(destination) && (c.allow === undefined || c.allow.includes(destination));
}
