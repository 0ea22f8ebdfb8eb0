export {
  FunctionRegistry,
  type Handler,
  type HandlerInput,
  type RegisterOptions,
  type RegisteredFunction,
  type RegistryEvent,
  type RegistryOptions,
  type ResolveOptions,
} from "./registry.js";
export {
  Executor,
  DEFAULT_MAX_REPLY_BYTES,
  DEFAULT_MAX_REPLY_VALUES,
  DEFAULT_MAX_SUBSTITUTED_BYTES,
  type ExecutorStats,
  type Dispatcher,
  type Cancellation,
  type DispatchRequest,
  type ExecuteLocalRequest,
  type ExecuteRequest,
  type ExecuteResult,
  type ExecutionSummary,
  type ExecutorOptions,
  type IntermediateResult,
  type Location,
  type Locator,
} from "./executor.js";
export {
  createCatalogLocator,
  createLocalLocator,
  type CatalogLocatorOptions,
  type LocalLocatorOptions,
} from "./locator.js";
export {
  RemoteDispatcher,
  RemoteCallHandler,
  RPC_CALL_TOPIC,
  RPC_CANCEL_TOPIC,
  RPC_RESULT_TOPIC,
  type RemoteCallHandlerOptions,
  type RemoteCallPayload,
  type RemoteDispatcherOptions,
  type RemoteResultPayload,
  type SendToNode,
} from "./remote.js";
export { RpcService, RPC_TOPIC_PREFIX, type RpcServiceOptions } from "./rpc-service.js";
export { forwardToOwner, type OwnerForwardingOptions } from "./owner-forwarding.js";
