export { MpregNode, type Session } from "./node.js";
export { resolveConfig, parseFlags, DEFAULT_CONFIG, ConfigError, type NodeConfig } from "./config.js";
export type { FunctionModuleNode, HandlerContext, Handler, RegisterOptions } from "./function-module.js";
