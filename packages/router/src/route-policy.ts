/**
 * Import and export policies per neighbour cluster. A rule decides which destination clusters a
 * route may lead to, narrows the services the route offers (prefix filters per kind) and adds
 * to its metric. Import rules apply to routes a neighbour sends; export rules to routes sent to
 * a neighbour. Compiled once ({@link RoutePolicySet.compile}); replaced as a whole on reload.
 */
import { MpregError } from "@mpreg/envelope";
import {
  OFFER_ALL,
  intersectServiceFilters,
  serviceFilter,
  serviceFilterFits,
  type ServiceFilter,
} from "./service-filter.js";
import type { PrefixList } from "./prefix-filter.js";
import { MAX_CLUSTER_ID_LENGTH, MAX_METRIC } from "./route-update.js";

/** Most rules in one direction (import or export). */
export const MAX_POLICY_RULES = 1024;
/** Most cluster ids in one rule's allow or deny list. */
export const MAX_POLICY_CLUSTERS = 4096;

/** A policy rule as configured. */
export interface RoutePolicyRule {
  /** The neighbour cluster the rule is for, or `"*"` for every neighbour without its own rule. */
  neighbour: string;
  /**
   * Destination clusters (exact ids) routes may lead to: `allow` absent lets every cluster
   * through; `deny` wins over `allow`.
   */
  clusters?: { allow?: string[]; deny?: string[] };
  /** Function names offered through the route (prefixes; see {@link PrefixList}). */
  functions?: PrefixList;
  /** Topic names (a publish on a denied topic is not forwarded along the route). */
  topics?: PrefixList;
  /** Queue names. */
  queues?: PrefixList;
  /** Added to the metric of each route the rule lets through; integer >= 0. Default 0. */
  metricAdd?: number;
}

/** Import and export rules; at most one rule per neighbour and direction, plus one `"*"`. */
export interface RoutePolicies {
  import?: RoutePolicyRule[];
  export?: RoutePolicyRule[];
}

/** A compiled rule. */
export interface CompiledRule {
  readonly allowCluster: (cluster: string) => boolean;
  readonly filter: ServiceFilter;
  readonly metricAdd: number;
}

/** The rule used where none is configured: lets everything through unchanged. */
export const PASS_RULE: CompiledRule = Object.freeze({ allowCluster: () => true, filter: OFFER_ALL, metricAdd: 0 });

/** A route's attributes after a rule: undefined when the rule refuses it. */
export interface PolicyResult {
  offers: ServiceFilter;
  metric: number;
}

/**
 * Applies a rule to a route toward `destination`: refused when the destination is not allowed,
 * when the narrowed filter would exceed the list limits (refusing is the safe answer: a
 * truncated deny list would leak), or when the metric would pass {@link MAX_METRIC}.
 */
export function applyRule(rule: CompiledRule, destination: string, offers: ServiceFilter, metric: number): PolicyResult | undefined {
  if (!rule.allowCluster(destination)) return undefined;
  const narrowed = intersectServiceFilters(offers, rule.filter);
  if (!serviceFilterFits(narrowed)) return undefined;
  const m = metric + rule.metricAdd;
  if (m > MAX_METRIC) return undefined;
  return { offers: narrowed, metric: m };
}

function clusterList(v: unknown, path: string): Set<string> {
  if (!Array.isArray(v) || v.length > MAX_POLICY_CLUSTERS) {
    throw MpregError.invalid(`${path} must be an array of at most ${MAX_POLICY_CLUSTERS} cluster ids`, path);
  }
  v.forEach((c: unknown, i) => {
    if (typeof c !== "string" || c.length === 0 || c.length > MAX_CLUSTER_ID_LENGTH) {
      throw MpregError.invalid(`${path}[${i}] must be a cluster id`, `${path}[${i}]`);
    }
  });
  return new Set(v as string[]);
}

function compileRule(raw: unknown, path: string): { neighbour: string; rule: CompiledRule } {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw MpregError.invalid(`${path} must be an object`, path);
  const o = raw as Record<string, unknown>;
  const known = new Set(["neighbour", "clusters", "functions", "topics", "queues", "metricAdd"]);
  for (const k of Object.keys(o)) if (!known.has(k)) throw MpregError.invalid(`${path}.${k} is not a policy field`, `${path}.${k}`);
  const neighbour = o.neighbour;
  if (typeof neighbour !== "string" || neighbour.length === 0 || neighbour.length > MAX_CLUSTER_ID_LENGTH) {
    throw MpregError.invalid(`${path}.neighbour must be a cluster id or "*"`, `${path}.neighbour`);
  }
  let allowCluster: (c: string) => boolean = () => true;
  if (o.clusters !== undefined) {
    const c = o.clusters as Record<string, unknown>;
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
      throw MpregError.invalid(`${path}.clusters must be an object {allow?, deny?}`, `${path}.clusters`);
    }
    const allow = c.allow === undefined ? undefined : clusterList(c.allow, `${path}.clusters.allow`);
    const deny = c.deny === undefined ? new Set<string>() : clusterList(c.deny, `${path}.clusters.deny`);
    allowCluster = (id) => !deny.has(id) && (allow === undefined || allow.has(id));
  }
  const filter = serviceFilter({ functions: o.functions, topics: o.topics, queues: o.queues }, path);
  const metricAdd = o.metricAdd ?? 0;
  if (typeof metricAdd !== "number" || !Number.isSafeInteger(metricAdd) || metricAdd < 0 || metricAdd > MAX_METRIC) {
    throw MpregError.invalid(`${path}.metricAdd must be an integer in 0..${MAX_METRIC}`, `${path}.metricAdd`);
  }
  return { neighbour, rule: { allowCluster, filter, metricAdd } };
}

function compileDirection(raw: unknown, path: string): Map<string, CompiledRule> {
  const out = new Map<string, CompiledRule>();
  if (raw === undefined) return out;
  if (!Array.isArray(raw) || raw.length > MAX_POLICY_RULES) {
    throw MpregError.invalid(`${path} must be an array of at most ${MAX_POLICY_RULES} rules`, path);
  }
  raw.forEach((r, i) => {
    const { neighbour, rule } = compileRule(r, `${path}[${i}]`);
    if (out.has(neighbour)) throw MpregError.invalid(`${path}[${i}]: a second rule for neighbour ${neighbour}`, `${path}[${i}].neighbour`);
    out.set(neighbour, rule);
  });
  return out;
}

/**
 * Compiled import and export policies. The rule for a neighbour is its own rule, else the
 * `"*"` rule, else {@link PASS_RULE} (no policy configured: everything passes).
 */
export class RoutePolicySet {
  private constructor(
    private readonly imports: Map<string, CompiledRule>,
    private readonly exports: Map<string, CompiledRule>,
  ) {}

  /** Policies that let everything through. */
  static readonly PASS = new RoutePolicySet(new Map(), new Map());

  /**
   * Checks and compiles policies (undefined: {@link RoutePolicySet.PASS}).
   * @throws {MpregError} 1002 naming the offending field (e.g. `policies.export[2].metricAdd`).
   */
  static compile(raw: unknown, path = "policies"): RoutePolicySet {
    if (raw === undefined) return RoutePolicySet.PASS;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw MpregError.invalid(`${path} must be an object {import?, export?}`, path);
    }
    const o = raw as Record<string, unknown>;
    return new RoutePolicySet(compileDirection(o.import, `${path}.import`), compileDirection(o.export, `${path}.export`));
  }

  /** The rule applied to routes received from `neighbour`. */
  importRule(neighbour: string): CompiledRule {
    return this.imports.get(neighbour) ?? this.imports.get("*") ?? PASS_RULE;
  }

  /** The rule applied to routes sent to `neighbour`. */
  exportRule(neighbour: string): CompiledRule {
    return this.exports.get(neighbour) ?? this.exports.get("*") ?? PASS_RULE;
  }
}
