import { createRequire } from "node:module";

/** The two functions of @msgpack/msgpack that tests and the benchmark use. */
export interface Msgpack {
  encode: (v: unknown) => Uint8Array;
  decode: (b: Uint8Array) => unknown;
}

/**
 * Loads @msgpack/msgpack (a devDependency of @mpreg/gossip, used only to check and measure
 * the wire form). Until the workspace install links it here, the copy that @mpreg/envelope
 * depends on is used.
 */
export async function loadMsgpack(): Promise<Msgpack> {
  const name = "@msgpack/msgpack";
  try {
    return (await import(/* @vite-ignore */ name)) as Msgpack;
  } catch {
    const req = createRequire(new URL("../../envelope/package.json", import.meta.url));
    return req(name) as Msgpack;
  }
}
