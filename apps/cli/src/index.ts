/**
 * `@mpreg/cli`: the client commands of `mpreg` (call, peers, topology, health, kv, pub, sub,
 * queue, cache, bench). The `mpreg` bin (apps/server) runs `start` and `config` itself and
 * hands every other command to {@link runCli}.
 */
export { runCli, COMMANDS, EXIT } from "./run-cli.js";
export type { CliIo, Command, CommandContext } from "./command.js";
export { parseArgs, flagsHelp, jsonArg, UsageError, COMMON_FLAGS, type FlagSpec, type FlagKind, type ParsedArgs } from "./args.js";
export {
  topologyView,
  renderTopology,
  isBuiltinFunction,
  type TopologyView,
  type TopologyNode,
  type ClusterMapNode,
  type PeerEntry,
} from "./topology-view.js";
export { percentile, summarize, type LatencySummary } from "./latency-summary.js";
export { formatError } from "./output.js";
