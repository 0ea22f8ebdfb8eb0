import log from "loglevel";

/**
 * The one logger factory. Loggers are named `mpreg:<scope>`; `MPREG_DEBUG=router,gossip` (or
 * `MPREG_DEBUG=*`) turns the named scopes up to debug, `MPREG_LOG_LEVEL` sets the default level.
 */
export type Logger = log.Logger;

const env: Record<string, string | undefined> =
  typeof process !== "undefined" && process.env ? process.env : {};
const debugScopes = new Set((env.MPREG_DEBUG ?? "").split(",").map((s) => s.trim()).filter(Boolean));
const defaultLevel = (env.MPREG_LOG_LEVEL ?? "warn") as log.LogLevelDesc;

export function createLogger(scope: string): Logger {
  const logger = log.getLogger(`mpreg:${scope}`);
  logger.setLevel(debugScopes.has(scope) || debugScopes.has("*") ? "debug" : defaultLevel, false);
  return logger;
}
