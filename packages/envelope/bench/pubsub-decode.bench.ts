/**
 * Decoding the three pub/sub frames that travel once per message (plain publish, publish ack,
 * notification, 100-byte binary payload, arriving as Node Buffers like the WebSocket's): the
 * template decoders that `decodeFrame` tries first against the generic path (scan, MessagePack
 * decoder, schema check). Run: `pnpm bench` (or `npx vitest bench --run bench/pubsub-decode.bench.ts`)
 * in packages/envelope.
 */
import { bench, describe } from "vitest";
import { decodeFrameGeneric } from "../src/codec.js";
import { decodeFrame, encodeNotification, encodePlainPublish, encodePubsubAck, newId } from "../src/index.js";

const payload = new Uint8Array(100);
const frames = {
  publish: Buffer.from(encodePlainPublish("a1b2c3d4e5f1x3", "bench.data", payload)),
  ack: Buffer.from(encodePubsubAck({ role: "pubsub-ack", u: "a1b2c3d4e5f1x3", success: true, message_id: newId() })),
  notification: Buffer.from(
    encodeNotification({
      role: "pubsub-notification",
      subscription_id: "sub-a1b2c3d4e5-1",
      message: { topic: "bench.data", payload, headers: {}, message_id: newId(), publisher: newId(), timestamp: Date.now() },
    }),
  ),
};

// Long runs: the shared 2-core machine is noisy; compare the rows of one group, not absolute numbers.
const opts = { time: 2000, warmupTime: 300 };

for (const [name, bytes] of Object.entries(frames)) {
  describe(`decode ${name}`, () => {
    bench("generic path", () => {
      if (!decodeFrameGeneric(bytes, "msgpack").ok) throw new Error("not decoded");
    }, opts);
    bench("decodeFrame (template)", () => {
      if (!decodeFrame(bytes, "msgpack").ok) throw new Error("not decoded");
    }, opts);
  });
}
