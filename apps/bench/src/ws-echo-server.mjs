// Child process: the bare baseline ("the limit"). A plain `ws` server that decodes each
// MessagePack binary frame and answers with a reply shaped like an MPREG rpc-response:
// {role: "rpc-response", u, r: {<name>: args[0]} for each command, error: null}.
// No validation, routing, planning or coalescing: one decode, one encode, one send per frame.
import { loadDependency } from "./deps.mjs";

const { WebSocketServer } = await loadDependency("ws");
const { Encoder, Decoder } = await loadDependency("@msgpack/msgpack");

const encoder = new Encoder();
const decoder = new Decoder();

const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });

server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    let msg;
    try {
      msg = decoder.decode(data);
    } catch {
      socket.close(1003, "undecodable frame");
      return;
    }
    const r = {};
    for (const cmd of msg.cmds ?? []) r[cmd.name] = cmd.args?.[0] ?? null;
    const reply = { role: "rpc-response", u: msg.u, r, error: null };
    socket.send(encoder.encode(reply), { binary: isBinary });
  });
});

server.on("listening", () => {
  const { port } = server.address();
  process.stdout.write(`BENCH_READY=ws://127.0.0.1:${port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The orchestrator closes our stdin when it goes away: never outlive it.
process.stdin.on("end", stop).resume();
