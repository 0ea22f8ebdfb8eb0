/**
 * The shape in which a service package (queue, cache, pub/sub, the Raft KV) offers its built-in
 * functions to a node. The package stays free of the function registry (`@mpreg/rpc`): it exports
 * a table of these, and the node registers each one as an ordinary function.
 */

/** What a built-in learns about the call it serves. */
export interface BuiltinContext {
  /**
   * Id of the calling connection. Leases, subscriptions and watches made by a call are owned by
   * it, and the service releases them when the node reports that owner closed.
   */
  readonly owner: string;
  /** Pushes a frame (e.g. `queue-delivery`, `kv-event`) to the calling connection. */
  push(frame: object): void;
  /** Aborted when the request ends early (timeout, connection closed, node stopping). */
  readonly signal: AbortSignal;
  /** The request's id (its `u`). */
  readonly request_id: string;
}

/** One built-in function of a service. */
export interface ServiceBuiltin {
  /** Registered name, e.g. `mpreg.queue.send`. */
  readonly name: string;
  /** One line shown by `rpc_list`. */
  readonly description: string;
  /**
   * True for administrative built-ins (membership changes, delete/purge, ...): a node allows
   * them only to callers with the admin scope.
   */
  readonly admin?: boolean;
  /** Runs the call; throws an `MpregError` (with a wire code) to fail it. */
  run(args: readonly unknown[], ctx: BuiltinContext): unknown;
}
