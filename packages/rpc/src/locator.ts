/** Locators: where each command of a request runs. */
import { ErrorCode, MpregError } from "@mpreg/envelope";
import type { PlanCommand } from "@mpreg/router";
import type { Location, Locator } from "./executor.js";
import type { FunctionRegistry } from "./registry.js";

/** Options of {@link createLocalLocator}. */
export interface LocalLocatorOptions {
  /** Resources of the node, added to every function's own resources when matching `locs`. */
  nodeResources?: readonly string[];
  /** This node's cluster: a command with another `target_cluster` has no candidate (1001). */
  clusterId?: string;
}

/**
 * A locator for a single node: every command runs locally on the highest registered version
 * that matches its function_id, version constraint and `locs`; otherwise 1001
 * (`{command, fun, reason}`). A malformed version constraint is 1002.
 */
export function createLocalLocator<Ctx>(registry: FunctionRegistry<Ctx>, options: LocalLocatorOptions = {}): Locator<Ctx> {
  const nodeResources = new Set(options.nodeResources ?? []);
  return (cmd: PlanCommand): Location<Ctx> => {
    const notFound = (reason: string) =>
      new MpregError(ErrorCode.NOT_FOUND, reason, { command: cmd.name, fun: cmd.fun, reason });
    if (cmd.target_cluster !== undefined && cmd.target_cluster !== null && cmd.target_cluster !== options.clusterId) {
      throw notFound(`no endpoint of ${cmd.fun} in cluster ${cmd.target_cluster}`);
    }
    // Node resources satisfy part of `locs`; the function must offer the rest.
    const locs = cmd.locs?.filter((r) => !nodeResources.has(r));
    const fn = registry.find(cmd.fun, {
      function_id: cmd.function_id ?? undefined,
      version_constraint: cmd.version_constraint ?? undefined,
      resources: locs,
    });
    if (fn === null) {
      throw notFound(
        registry.has(cmd.fun)
          ? `no version of ${cmd.fun} matches the function_id, version constraint and resources`
          : `function ${cmd.fun} is not registered`,
      );
    }
    return { kind: "local", fn };
  };
}
