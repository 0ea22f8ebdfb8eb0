// A NATS request/reply responder in its own process (the counterpart of MPREG's second node):
//   node src/nats-responder.mjs nats://127.0.0.1:PORT SUBJECT
// answers every request on SUBJECT with its own payload; prints NATS_RESPONDER=ready.
import { connect } from "nats";

const [url, subject] = process.argv.slice(2);
const nc = await connect({ servers: url, maxReconnectAttempts: 0 });
nc.subscribe(subject, { callback: (err, m) => !err && m.respond(m.data) });
await nc.flush();
console.log("NATS_RESPONDER=ready");
process.stdin.resume();
process.stdin.on("end", async () => {
  await nc.close();
  process.exit(0);
});
process.on("SIGTERM", () => process.exit(0));
