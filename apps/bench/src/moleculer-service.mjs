// Child process: the Moleculer 0.14 service broker (the peer). One `echo.echo` action,
// TCP transporter, UDP discovery off, default JSON serializer; reports its TCP port.
import { loadDependency } from "./deps.mjs";

const { ServiceBroker } = await loadDependency("moleculer");

const broker = new ServiceBroker({
  nodeID: process.argv[2] ?? "bench-echo",
  namespace: process.argv[3] ?? "",
  transporter: { type: "TCP", options: { udpDiscovery: false, port: 0 } },
  logger: false,
  metrics: false,
  tracing: false,
});

broker.createService({
  name: "echo",
  actions: {
    echo(ctx) {
      return ctx.params.x;
    },
  },
});

await broker.start();
// The TCP reader stores the port the OS gave it back into the transporter options.
const port = broker.transit.tx.opts.port;
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write(`moleculer did not report its TCP port (got ${String(port)})\n`);
  process.exit(1);
}
process.stdout.write(`BENCH_READY=${port}\n`);

const stop = () => broker.stop().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop).resume();
