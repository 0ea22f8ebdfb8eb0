import { configFromObject, type NodeConfig } from "./config.js";
import { MpregNode } from "./node.js";

/** Options of {@link startNode}: any node configuration key, plus in-process registrations. */
export type StartNodeOptions = Partial<NodeConfig> & {
  /**
   * Called once built-ins are registered and before the node listens: register this service's
   * own functions here (`node.register(name, handler, options)`), so they are announced from
   * the first moment peers can see the node.
   */
  setup?: (node: MpregNode) => void | Promise<void>;
};

/**
 * Runs an MPREG node inside an existing Node service. Options are the keys of the config file
 * (camelCase; defaults as `mpreg start`), validated the same way (ConfigError names the first
 * problem). Resolves once the node listens; `node.listenUrl` is its client URL (port 0 picks a
 * free port), `node.stop()` shuts it down gracefully. The `mpreg start` command uses it too.
 *
 * @example
 * const node = await startNode({ port: 0, setup: (n) => n.register("greet", ({ args }) => `hi ${args[0]}`) });
 * console.log(node.listenUrl);
 * await node.stop();
 */
export async function startNode(options: StartNodeOptions = {}): Promise<MpregNode> {
  const { setup, ...config } = options;
  const node = new MpregNode(configFromObject(config));
  try {
    await node.start(setup);
  } catch (e) {
    await node.stop().catch(() => undefined);
    throw e;
  }
  return node;
}
