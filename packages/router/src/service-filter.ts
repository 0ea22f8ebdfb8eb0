/**
 * What a route offers: one prefix filter per kind of named service (function names, topic
 * names, queue names). A cluster's own route offers what it is configured to export; every
 * export and import policy along a path narrows it by intersection, so the filter a receiver
 * holds is exactly what every policy on the path lets through.
 */
import type { CatalogEntry } from "@mpreg/catalog";
import { MpregError } from "@mpreg/envelope";
import {
  ALLOW_ALL,
  intersectPrefixFilters,
  isAllowAll,
  prefixAllows,
  prefixFilter,
  prefixFilterFits,
  prefixFilterToList,
  samePrefixFilter,
  type PrefixFilter,
  type PrefixList,
} from "./prefix-filter.js";

/** The kinds of named services a policy filters. */
export type ServiceKind = "function" | "topic" | "queue";

/** The service kinds, in the order of the wire form. */
export const SERVICE_KINDS: readonly ServiceKind[] = ["function", "topic", "queue"];

/** Wire and config form of a {@link ServiceFilter}: an absent list lets every name through. */
export interface Offers {
  functions?: PrefixList;
  topics?: PrefixList;
  queues?: PrefixList;
}

/** A normalised filter per service kind. */
export interface ServiceFilter {
  readonly function: PrefixFilter;
  readonly topic: PrefixFilter;
  readonly queue: PrefixFilter;
}

/** Lets every name of every kind through. */
export const OFFER_ALL: ServiceFilter = Object.freeze({ function: ALLOW_ALL, topic: ALLOW_ALL, queue: ALLOW_ALL });

const WIRE_FIELD = { function: "functions", topic: "topics", queue: "queues" } as const;

/**
 * Checks and normalises an {@link Offers} (absent: {@link OFFER_ALL}).
 * @throws {MpregError} 1002 naming the offending field.
 */
export function serviceFilter(offers: unknown, path = "offers"): ServiceFilter {
  if (offers === undefined) return OFFER_ALL;
  if (typeof offers !== "object" || offers === null || Array.isArray(offers)) {
    throw MpregError.invalid(`${path} must be an object {functions?, topics?, queues?}`, path);
  }
  const o = offers as Record<string, unknown>;
  return {
    function: prefixFilter(o.functions, `${path}.functions`),
    topic: prefixFilter(o.topics, `${path}.topics`),
    queue: prefixFilter(o.queues, `${path}.queues`),
  };
}

/** True when `name` of `kind` passes the filter. */
export function serviceAllows(f: ServiceFilter, kind: ServiceKind, name: string): boolean {
  return prefixAllows(f[kind], name);
}

/** Exactly the names both filters let through, per kind. */
export function intersectServiceFilters(a: ServiceFilter, b: ServiceFilter): ServiceFilter {
  if (a === OFFER_ALL) return b;
  if (b === OFFER_ALL) return a;
  return {
    function: intersectPrefixFilters(a.function, b.function),
    topic: intersectPrefixFilters(a.topic, b.topic),
    queue: intersectPrefixFilters(a.queue, b.queue),
  };
}

/** True when every list is within {@link MAX_PREFIXES}. */
export function serviceFilterFits(f: ServiceFilter): boolean {
  return prefixFilterFits(f.function) && prefixFilterFits(f.topic) && prefixFilterFits(f.queue);
}

/** True when two normalised filters are the same. */
export function sameServiceFilter(a: ServiceFilter, b: ServiceFilter): boolean {
  return (
    a === b ||
    (samePrefixFilter(a.function, b.function) && samePrefixFilter(a.topic, b.topic) && samePrefixFilter(a.queue, b.queue))
  );
}

/** The wire form; undefined when it lets everything through (the field is then left out). */
export function serviceFilterToOffers(f: ServiceFilter): Offers | undefined {
  const out: Offers = {};
  for (const k of SERVICE_KINDS) if (!isAllowAll(f[k])) out[WIRE_FIELD[k]] = prefixFilterToList(f[k]);
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Prefix of the topic names cache namespaces go by in policies (`mpreg.cache.<namespace>`). */
export const CACHE_TOPIC_PREFIX = "mpreg.cache.";

/**
 * The name a cache namespace has in policies and offers: the topic `mpreg.cache.<namespace>`
 * (replication of a federated namespace is a stream of updates, like a published topic), so
 * `topics: {deny: ["mpreg.cache."]}` keeps every cache namespace out and
 * `topics: {allow: ["mpreg.cache.prices"]}` lets one in.
 */
export function cacheServiceName(namespace: string): string {
  return CACHE_TOPIC_PREFIX + namespace;
}

/**
 * Whether a catalog entry of a remote cluster may be used through a route offering `f`:
 * functions and queues by name; cache namespaces by their topic name
 * ({@link cacheServiceName}); nodes and topic subscriptions pass (a subscription's patterns
 * are not names: the topic a message is published on is checked when it is forwarded, with
 * {@link serviceAllows}).
 */
export function catalogEntryAllowed(f: ServiceFilter, entry: CatalogEntry): boolean {
  switch (entry.kind) {
    case "function":
      return prefixAllows(f.function, entry.name);
    case "queue":
      return prefixAllows(f.queue, entry.name);
    case "cache":
      return prefixAllows(f.topic, cacheServiceName(entry.namespace));
    default:
      return true;
  }
}
