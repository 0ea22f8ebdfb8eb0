export { MpregNode, type Session } from "./node.js";
export { startNode, type StartNodeOptions } from "./embed.js";
export { resolveConfig, configFromObject, parseFlags, DEFAULT_CONFIG, ConfigError, type NodeConfig } from "./config.js";
export type { FunctionModuleNode, HandlerContext, Handler, RegisterOptions } from "./function-module.js";
