import { ErrorCode, MpregError, type ServiceBuiltin } from "@mpreg/envelope";
import type { FunctionRegistry } from "@mpreg/rpc";

/** What a built-in needs of the calling connection. */
export interface BuiltinCaller {
  readonly conn: { readonly id: string };
}

/**
 * Registers a service's built-ins (the `ServiceBuiltin` table a package exports) as ordinary
 * functions. The calling connection is the owner of what a call creates (subscriptions, leases,
 * watches) and receives its pushes; a call that arrived from another node has no connection, so
 * connection-bound built-ins refuse it (1002: call them on the node you are connected to).
 */
export function registerServiceBuiltins<S extends BuiltinCaller>(
  registry: FunctionRegistry<S>,
  builtins: readonly ServiceBuiltin[],
  push: (session: S, frame: object) => void,
): void {
  for (const b of builtins) {
    registry.register(
      b.name,
      ({ args, signal, request_id, ctx }) =>
        b.run(args, {
          owner: ctx === undefined ? `remote:${request_id}` : ctx.conn.id,
          push: (frame) => {
            if (ctx === undefined) {
              throw new MpregError(ErrorCode.INVALID_REQUEST, `${b.name} pushes to its caller: call it on the node you are connected to`, { reason: "connection-bound", fun: b.name });
            }
            push(ctx, frame);
          },
          signal,
          request_id,
        }),
      { description: b.description, ...(b.admin === true ? { admin: true } : {}) },
    );
  }
}
