import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the monitoring API reads from the node; each call returns a fresh view. */
export interface MonitoringSource {
  health(): { status: "ok" | "stopping"; node_id: string; cluster_id: string; uptime_ms: number };
  /** Prometheus text exposition format. */
  metrics(): string;
  topology(): unknown;
  catalog(): unknown;
}

/**
 * The HTTP monitoring API: `GET /health`, `/metrics`, `/topology`, `/catalog`. Read-only, so it
 * never changes what the node does; anything else is 404.
 */
export class MonitoringServer {
  private server: Server | undefined;

  constructor(private readonly source: MonitoringSource) {}

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET") {
        res.writeHead(405, { allow: "GET" }).end();
        return;
      }
      try {
        switch (path) {
          case "/health": {
            const h = this.source.health();
            res.writeHead(h.status === "ok" ? 200 : 503, { "content-type": "application/json" });
            res.end(JSON.stringify(h));
            return;
          }
          case "/metrics":
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(this.source.metrics());
            return;
          case "/topology":
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.source.topology()));
            return;
          case "/catalog":
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.source.catalog()));
            return;
          default:
            res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
        }
      } catch (e) {
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: String(e) }));
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    return `http://${shownHost}:${addr.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
