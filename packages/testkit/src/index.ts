export { SeededRandom } from "./random.js";
export { SimClock, type SimTimerId } from "./clock.js";
export {
  SimNetwork,
  fixedDelay,
  uniformDelay,
  type DelayFn,
  type LinkConfig,
  type NetworkStats,
  type NodeTraffic,
  type SimHandler,
  type SimNetworkOptions,
} from "./network.js";
export { waitFor, type WaitForOptions } from "./wait-for.js";
export { startNode, type NodeProcess, type StartNodeOptions } from "./process-harness.js";
export {
  checkLinearizable,
  registerModel,
  type CheckOptions,
  type CheckResult,
  type Model,
  type Operation,
  type RegisterInput,
} from "./linearizability.js";
export { makeTestCertificates, opensslMissingReason, type TestCertificates } from "./test-certificates.js";
