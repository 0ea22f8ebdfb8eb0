import { pathToFileURL } from "node:url";

/** What a handler receives (PROTOCOL section 7). */
export interface HandlerContext {
  args: unknown[];
  kwargs: Record<string, unknown>;
  signal: AbortSignal;
  request_id: string;
}

export type Handler = (ctx: HandlerContext) => unknown;

export interface RegisterOptions {
  resources?: string[];
  version?: string;
  function_id?: string;
  description?: string;
}

/** The `node` object a function module's default export receives. */
export interface FunctionModuleNode {
  register(name: string, handler: Handler, options?: RegisterOptions): void;
  readonly nodeId: string;
  readonly clusterId: string;
}

/**
 * Loads each `--functions` module and calls its default export with `node`. A module that is
 * missing, has no default function export or throws stops the start with a clear error.
 */
export async function loadFunctionModules(paths: readonly string[], node: FunctionModuleNode): Promise<void> {
  for (const path of paths) {
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
    } catch (e) {
      throw new Error(`cannot load function module ${path}: ${(e as Error).message}`);
    }
    if (typeof mod.default !== "function") {
      throw new Error(`function module ${path} must default-export a function (node) => void`);
    }
    try {
      await (mod.default as (n: FunctionModuleNode) => unknown)(node);
    } catch (e) {
      throw new Error(`function module ${path} failed while registering: ${(e as Error).message}`);
    }
  }
}
