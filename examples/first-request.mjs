// The README's first request, runnable as it is: start a node with `pnpm start`, then
//   node examples/first-request.mjs
// (MPREG_URL=ws://HOST:PORT picks another node.)
import { MpregClient } from "@mpreg/client";

const url = process.env.MPREG_URL ?? "ws://127.0.0.1:6666";
const client = await MpregClient.connect(url, { reconnect: false });

// One round trip, four calls: `total` waits for `sum`, `shout` reads a path into `who`.
const reply = await client.request([
  { name: "sum", fun: "add", args: [1, 2, 3] },
  { name: "total", fun: "multiply", args: ["sum", 10] },
  { name: "who", fun: "profile", args: ["ada"] },
  { name: "shout", fun: "upper", args: ["who.tags.1"] },
]);
console.log(reply.r); // { total: 60, shout: 'MPREG' }  (the leaves: calls nothing else used)

console.log(await client.call("echo", ["hello"])); // hello
await client.close();
