export {};
export {
  planRequest,
  substitute,
  MAX_COMMANDS,
  MAX_NESTING_DEPTH,
  type Plan,
  type PlanCommand,
  type PlannedCommand,
  type ReferenceSite,
} from "./planner.js";
