export { ErrorCode, MpregError, errorCodeName, isMpregError, type WireError } from "./errors.js";
export { createLogger, type Logger } from "./logger.js";
export { newId } from "./ids.js";
