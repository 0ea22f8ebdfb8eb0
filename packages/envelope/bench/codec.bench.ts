/**
 * Codec cost on the RPC hot path: a typical `rpc` request is decoded and its `rpc-response`
 * encoded, with the full codec (parse + depth/`__proto__` walk + compiled schema check) against
 * bare MessagePack/JSON (parse and stringify only), which is what a plain ws echo would do.
 * Run: `pnpm bench` (or `npx vitest bench --run`) in packages/envelope.
 */
import { decode, encode } from "@msgpack/msgpack";
import { bench, describe } from "vitest";
import { decodeFrame, encodeFrame } from "../src/index.js";

const request = {
  role: "rpc",
  u: "01JD8X3Q6V5ZC1N9KX1YB7M2QH",
  cmds: [
    { name: "fetch", fun: "data.fetch", args: ["users", { limit: 10, filter: { active: true } }], locs: ["db"] },
    { name: "score", fun: "ml.score", args: ["fetch"], kwargs: { model: "v2", threshold: 0.5 }, locs: ["gpu"] },
    { name: "report", fun: "report.render", args: ["score.items", "fetch.total"] },
  ],
  timeout_ms: 30_000,
};
const response = {
  role: "rpc-response",
  u: request.u,
  r: { report: { title: "weekly", rows: [[1, "a", 0.5], [2, "b", 0.7], [3, "c", 0.9]], total: 3 } },
  error: null,
};

// Long runs: the shared 2-core machine is noisy; compare the rows of one group, not absolute numbers.
const opts = { time: 3000, warmupTime: 500 };

const requestBin = encode(request);
const requestText = JSON.stringify(request);

describe("rpc request decode + response encode (msgpack)", () => {
  bench("bare @msgpack/msgpack", () => {
    decode(requestBin);
    encode(response);
  }, opts);
  bench("envelope codec", () => {
    const res = decodeFrame(requestBin, "msgpack");
    if (!res.ok) throw res.error;
    encodeFrame(response, "msgpack");
  }, opts);
});

describe("rpc request decode + response encode (json)", () => {
  bench("bare JSON", () => {
    JSON.parse(requestText);
    JSON.stringify(response);
  }, opts);
  bench("envelope codec", () => {
    const res = decodeFrame(requestText, "json");
    if (!res.ok) throw res.error;
    encodeFrame(response, "json");
  }, opts);
});

describe("rpc request decode only (msgpack)", () => {
  bench("bare @msgpack/msgpack decode", () => {
    decode(requestBin);
  }, opts);
  bench("decodeFrame (scan + decode + compiled check)", () => {
    decodeFrame(requestBin, "msgpack");
  }, opts);
});

describe("hostile input (msgpack)", () => {
  const garbage = new Uint8Array(256).map((_, i) => (i * 37) & 0xff);
  bench("decodeFrame on garbage bytes", () => {
    decodeFrame(garbage, "msgpack");
  }, opts);
  const invalid = encode({ ...request, cmds: [{ name: "a" }] });
  bench("decodeFrame on a schema violation", () => {
    decodeFrame(invalid, "msgpack");
  }, opts);
});
