/**
 * Catalog micro-benchmarks: merging deltas, indexed function lookups, snapshots and digests.
 * Run with `pnpm --filter @mpreg/catalog bench` (vitest bench prints a table).
 */
import { bench, describe } from "vitest";
import { Catalog, entryKey, normalizeEntry, type CatalogDelta, type CatalogEntry } from "../src/index.js";

const NODES = 100;
const FUNCS_PER_NODE = 100; // 10 000 function endpoints
const T0 = 1_000_000;

function deltas(): CatalogDelta[] {
  const out: CatalogDelta[] = [];
  let v = 1;
  for (let n = 0; n < NODES; n++) {
    for (let f = 0; f < FUNCS_PER_NODE; f++) {
      const entry: CatalogEntry = normalizeEntry({
        kind: "function",
        name: `svc.fn${f}`,
        function_id: `fn${f}`,
        version: `1.${f % 5}.0`,
        resources: f % 3 === 0 ? ["gpu", "eu"] : ["cpu"],
        node_id: `node-${n}`,
        cluster_id: `c${n % 4}`,
      });
      out.push({ kind: "upsert", key: entryKey(entry), owner: entry.node_id, version: v++, ttl_ms: 120_000, entry });
    }
  }
  return out;
}

const all = deltas();
const full = new Catalog({ nodeId: "self", clusterId: "c0" });
full.applyDeltas(all, T0);
const fullDigest = full.digest();

describe("catalog (10 000 function endpoints on 100 nodes)", () => {
  bench("apply 10 000 new upserts", () => {
    const c = new Catalog({ nodeId: "self", clusterId: "c0" });
    c.applyDeltas(all, T0);
  });

  bench("re-apply 10 000 duplicate upserts (stale)", () => {
    full.applyDeltas(all, T0);
  });

  bench("queryFunctions by name + constraint + resources", () => {
    full.queryFunctions({ name: "svc.fn42", version_constraint: "^1.2", resources: ["cpu"] });
  });

  bench("queryFunctions by node", () => {
    full.queryFunctions({ node_id: "node-7" });
  });

  bench("snapshot", () => {
    full.snapshot(T0);
  });

  bench("digest + deltasSince (in sync)", () => {
    full.deltasSince(fullDigest, T0);
  });

  bench("summary", () => {
    full.summary();
  });
});
