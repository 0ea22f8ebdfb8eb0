// Paths and dependency loading shared by the orchestrator and its child processes.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Directory holding this file (apps/bench/src). */
export const SRC_DIR = dirname(fileURLToPath(import.meta.url));
/** Repository root, found relative to this file so a fresh clone works from any cwd. */
export const REPO_ROOT = resolve(SRC_DIR, "..", "..", "..");
/** The MPREG node's command line entry point (built by `pnpm build`). */
export const MPREG_CLI = join(REPO_ROOT, "apps", "server", "dist", "cli.js");
/** The built client, used only when `@mpreg/client` is not linked into apps/bench yet. */
const CLIENT_DIST = join(REPO_ROOT, "packages", "client", "dist", "index.js");

// Before `pnpm install` has linked this package's dependencies, the same installed copies are
// reachable through workspace packages that already declare them. After install the normal
// import wins and these are never consulted.
const FALLBACK_OWNERS = {
  moleculer: ["apps/server"],
  ws: ["apps/server", "packages/transport", "packages/client"],
  "@msgpack/msgpack": ["packages/envelope", "packages/transport", "packages/client"],
};

function notFound(err) {
  return err && (err.code === "ERR_MODULE_NOT_FOUND" || err.code === "MODULE_NOT_FOUND");
}

/**
 * Import a third-party dependency by name; returns an object holding its named exports.
 * @param {"moleculer" | "ws" | "@msgpack/msgpack"} name
 */
export async function loadDependency(name) {
  try {
    return await import(name);
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  for (const owner of FALLBACK_OWNERS[name] ?? []) {
    const pkgJson = join(REPO_ROOT, owner, "package.json");
    if (!existsSync(pkgJson)) continue;
    try {
      // CommonJS entry: plain exports object, same shape as the ESM named exports we use.
      return createRequire(pkgJson)(name);
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
  throw new Error(`cannot load "${name}": run \`pnpm install\` at the repository root`);
}

/** Whether the MPREG node and client are built, and if not, why. */
export function mpregAvailability() {
  if (!existsSync(MPREG_CLI)) {
    return { ok: false, reason: `${MPREG_CLI} is missing: build the server first (pnpm build)` };
  }
  return { ok: true, reason: "" };
}

/** Import `@mpreg/client` (its built `dist`). */
export async function loadMpregClient() {
  try {
    return await import("@mpreg/client");
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  if (!existsSync(CLIENT_DIST)) {
    throw new Error(`${CLIENT_DIST} is missing: build the client first (pnpm build)`);
  }
  return import(pathToFileURL(CLIENT_DIST).href);
}
