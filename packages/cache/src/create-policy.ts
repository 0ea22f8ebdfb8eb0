import { MpregError } from "@mpreg/envelope";
import { CostPolicy } from "./cost-policy.js";
import type { EvictionPolicy, PolicyLimits, PolicyName } from "./eviction-policy.js";
import { LfuPolicy } from "./lfu-policy.js";
import { LruPolicy } from "./lru-policy.js";
import { S4lruPolicy } from "./s4lru-policy.js";
import { TinyLfuPolicy } from "./tinylfu-policy.js";
import { TtlPolicy } from "./ttl-policy.js";

/** Builds the named policy (1002 naming `policy` for an unknown name). */
export function createPolicy<V>(name: PolicyName, limits: PolicyLimits): EvictionPolicy<V> {
  switch (name) {
    case "tinylfu":
      return new TinyLfuPolicy<V>(limits);
    case "lru":
      return new LruPolicy<V>();
    case "lfu":
      return new LfuPolicy<V>();
    case "s4lru":
      return new S4lruPolicy<V>(limits);
    case "cost":
      return new CostPolicy<V>();
    case "ttl":
      return new TtlPolicy<V>();
    default:
      throw MpregError.invalid(`unknown cache policy ${JSON.stringify(name)}`, "policy");
  }
}
