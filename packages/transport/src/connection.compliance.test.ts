import WebSocket from "ws";
import { connectionCompliance, waitFor, type ConnectedPair } from "./connection.compliance.js";
import type { Connection } from "./connection.js";
import { connectWs, type ConnectOptions } from "./client-connection.js";
import type { WhatwgWebSocketCtor } from "./browser-connection.js";
import { createMemoryConnectionPair } from "./memory-connection.js";
import { createWsListener } from "./ws-listener.js";

async function wsPair(clientOptions: ConnectOptions, clientIsA: boolean): Promise<ConnectedPair> {
  const listener = createWsListener({ pingIntervalMs: 0 });
  let server: Connection | null = null;
  listener.onConnection((c) => {
    server = c;
  });
  const { url } = await listener.listen({ port: 0 });
  const client = await connectWs(url, { reconnect: false, ...clientOptions });
  await waitFor(() => server !== null, 5000, "server side connection");
  const s = server as unknown as Connection;
  return {
    a: clientIsA ? client : s,
    b: clientIsA ? s : client,
    cleanup: async () => {
      client.close();
      await listener.close();
    },
  };
}

connectionCompliance("memory pair", async () => {
  const [a, b] = createMemoryConnectionPair();
  return { a, b, cleanup: async () => {} };
});

connectionCompliance("ws: node client -> server", () => wsPair({}, true));
connectionCompliance("ws: server -> node client", () => wsPair({}, false));
// The browser adapter, driven by ws's WHATWG-compatible WebSocket class.
connectionCompliance("ws: WHATWG (browser) client -> server", () =>
  wsPair({ WebSocket: WebSocket as unknown as WhatwgWebSocketCtor }, true),
);
connectionCompliance("ws: server -> WHATWG (browser) client", () =>
  wsPair({ WebSocket: WebSocket as unknown as WhatwgWebSocketCtor }, false),
);
