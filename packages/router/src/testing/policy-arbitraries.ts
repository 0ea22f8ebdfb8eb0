/**
 * fast-check arbitraries of federation policies (import and export rules per neighbour), valid
 * by construction for `RoutePolicySet.compile` (and so for `RouteTable` and the `federation`
 * configuration's `import` / `export`).
 */
import { MpregError } from "@mpreg/envelope";
import fc from "fast-check";
import type { RoutePolicies, RoutePolicyRule } from "../route-policy.js";
import { MAX_CLUSTER_ID_LENGTH, MAX_METRIC } from "../route-update.js";
import { prefixListArb, type PrefixListArbOptions } from "./service-arbitraries.js";

/** Options of {@link routePolicyRuleArb}. */
export interface RoutePolicyRuleArbOptions extends PrefixListArbOptions {
  /** The rule's `neighbour`: a fixed cluster id (or `"*"`) or an arbitrary of them. Default `"*"`. */
  neighbour?: string | fc.Arbitrary<string>;
  /**
   * Cluster ids that `clusters.allow` and `clusters.deny` draw from. Default none: rules
   * carry no `clusters` field.
   */
  clusters?: readonly string[];
  /** Largest `metricAdd`. Default 10; 0 leaves `metricAdd` out. */
  maxMetricAdd?: number;
}

/** Options of {@link routePoliciesArb}. */
export interface RoutePoliciesArbOptions extends Omit<RoutePolicyRuleArbOptions, "neighbour"> {
  /** Neighbour cluster ids that may get a rule of their own (each direction may also get a `"*"` rule). */
  neighbours: readonly string[];
}

function isId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_CLUSTER_ID_LENGTH;
}

/**
 * One policy rule: for `neighbour`, optionally destination cluster lists (from `clusters`),
 * prefix lists for functions, topics and queues, and a `metricAdd`. Every field but
 * `neighbour` may be absent.
 */
export function routePolicyRuleArb(opts: RoutePolicyRuleArbOptions = {}): fc.Arbitrary<RoutePolicyRule> {
  const n = opts.neighbour ?? "*";
  if (typeof n === "string" && !isId(n)) throw MpregError.invalid("neighbour must be a cluster id or \"*\"", "neighbour");
  const neighbour = typeof n === "string" ? fc.constant(n) : n;
  const clusters = opts.clusters ?? [];
  clusters.forEach((c, i) => {
    if (!isId(c)) throw MpregError.invalid(`clusters[${i}] must be a cluster id`, `clusters[${i}]`);
  });
  const maxMetricAdd = opts.maxMetricAdd ?? 10;
  if (!Number.isSafeInteger(maxMetricAdd) || maxMetricAdd < 0 || maxMetricAdd > MAX_METRIC) {
    throw MpregError.invalid(`maxMetricAdd must be an integer in 0..${MAX_METRIC}`, "maxMetricAdd");
  }
  const list = prefixListArb(opts);
  const fields: { [K in keyof RoutePolicyRule]?: fc.Arbitrary<RoutePolicyRule[K]> } = { functions: list, topics: list, queues: list };
  if (clusters.length > 0) {
    const ids = [...new Set(clusters)];
    fields.clusters = fc.record({ allow: fc.subarray(ids), deny: fc.subarray(ids) }, { requiredKeys: [] });
  }
  if (maxMetricAdd > 0) fields.metricAdd = fc.integer({ min: 0, max: maxMetricAdd });
  return fc
    .tuple(neighbour, fc.record(fields as { [K in keyof RoutePolicyRule]: fc.Arbitrary<RoutePolicyRule[K]> }, { requiredKeys: [] }))
    .map(([nb, rest]): RoutePolicyRule => {
      if (!isId(nb)) throw MpregError.invalid(`neighbour arbitrary produced ${JSON.stringify(nb)}: not a cluster id`, "neighbour");
      return { neighbour: nb, ...rest };
    });
}

/**
 * Import and export rules: in each direction, each of `neighbours` and `"*"` independently
 * gets a rule or none (at most one rule per neighbour and direction, as required).
 */
export function routePoliciesArb(opts: RoutePoliciesArbOptions): fc.Arbitrary<RoutePolicies> {
  const targets = [...new Set([...opts.neighbours, "*"])];
  targets.forEach((t, i) => {
    if (!isId(t)) throw MpregError.invalid(`neighbours[${i}] must be a cluster id`, `neighbours[${i}]`);
  });
  const direction = fc
    .tuple(...targets.map((t) => fc.option(routePolicyRuleArb({ ...opts, neighbour: t }), { nil: undefined })))
    .map((rules) => rules.filter((r): r is RoutePolicyRule => r !== undefined));
  return fc.record({ import: direction, export: direction });
}
