import { MpregError } from "@mpreg/envelope";
import type { MpregNode } from "./node.js";

/**
 * The built-in functions every node serves (PROTOCOL section 3). They are ordinary registered
 * functions, so they compose with references like any other.
 */
export function registerBuiltins(node: MpregNode): void {
  const opts = (description: string) => ({ description });
  node.registry.register("echo", ({ args }) => args[0] ?? null, opts("Returns its first argument"));
  node.registry.register("echos", ({ args }) => [...args], opts("Returns its arguments as an array"));
  node.registry.register("cluster_map", () => node.clusterMap(), opts("Every node of the cluster, this one included; then other clusters' nodes this node may use (status remote)"));
  node.registry.register("config_reload", () => node.reloadConfig(), {
    description: "Reads the configuration again and applies its reloadable part (federation policies and trusted keys): {applied, not_applied}",
    admin: true,
  });
  node.registry.register(
    "federation_rotate_key",
    ({ args }) => {
      const o = objectArg(args[0], "federation_rotate_key");
      if (o.overlap_ms !== undefined && (typeof o.overlap_ms !== "number" || !Number.isSafeInteger(o.overlap_ms) || o.overlap_ms < 0)) {
        throw MpregError.invalid("overlap_ms must be an integer >= 0", "overlap_ms");
      }
      return node.rotateFederationKey(o.overlap_ms as number | undefined);
    },
    {
      description: "Rotates the cluster's federation signing key: {overlap_ms?} -> {key_id, public_key, seq, overlap_ms, key_file}",
      admin: true,
    },
  );
  node.registry.register(
    "list_peers",
    ({ args }) => node.fabric.peers(optionalString(objectArg(args[0], "list_peers").cluster_id, "cluster_id")),
    opts("The other nodes this node knows, other clusters' included (status remote): {cluster_id?}"),
  );
  node.registry.register(
    "catalog_query",
    ({ args }) => node.fabric.catalog.catalogQuery(args[0] ?? {}, Date.now(), node.fabric.foreign === undefined ? [] : [node.fabric.foreign]),
    opts("Catalog search, other clusters' entries this node may use included (federation): {entry_type, ...filters, limit?, page_token?}"),
  );
  node.registry.register(
    "federation_status",
    () => node.fabric.federation?.status() ?? { mode: "strict", cluster_id: node.clusterId, node_id: node.nodeId },
    opts("This node's federation: neighbours, routes to other clusters and via whom, counters"),
  );
  node.registry.register(
    "rpc_list",
    ({ args }) => {
      const filter = objectArg(args[0], "rpc_list");
      const namespace = optionalString(filter.namespace, "namespace");
      const query = optionalString(filter.query, "query")?.toLowerCase();
      const items = node.functionList().filter((f) => {
        if (namespace !== undefined && !(f.name === namespace || f.name.startsWith(`${namespace}.`))) return false;
        if (query !== undefined && !`${f.name} ${f.function_id} ${f.description}`.toLowerCase().includes(query)) return false;
        return true;
      });
      return { items };
    },
    opts("Functions this node can call, other clusters' included (federation): {namespace?, query?}"),
  );
}

function objectArg(v: unknown, fun: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw MpregError.invalid(`${fun} takes one object argument`, "args.0");
  return v as Record<string, unknown>;
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw MpregError.invalid(`${field} must be a string`, field);
  return v;
}
