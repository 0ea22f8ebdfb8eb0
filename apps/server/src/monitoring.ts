import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DASHBOARD_HEADERS, type Dashboard } from "@mpreg/dashboard";

/** `/ready`'s answer: ready, or the reasons it is not (e.g. "raft group kv has no leader"). */
export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/** What the monitoring API reads from the node; each call returns a fresh view. */
export interface MonitoringSource {
  health(): { status: "ok" | "stopping"; node_id: string; cluster_id: string; uptime_ms: number };
  /**
   * Whether the node should receive traffic. Absent: ready whenever it answers (the monitoring
   * API listens only after the client listener does).
   */
  ready?(): Readiness;
  /** Prometheus text exposition format. */
  metrics(): string;
  /** Clusters, nodes and links as JSON (see `topologyView` in `@mpreg/cli`). */
  topology(): unknown;
  catalog(): unknown;
}

/** Options of {@link MonitoringServer}. */
export interface MonitoringOptions {
  /**
   * When given, every request must carry a token it accepts, as `Authorization: Bearer <token>`
   * or `?token=<token>` (for a browser); otherwise 401. Pass it when client tokens are
   * configured; absent, the API is open to whoever can reach its (loopback by default) address.
   */
  checkToken?: (token: string) => boolean;
  /**
   * Serves `GET /dashboard` (the page, behind the token like every endpoint) and its bundles
   * `/dashboard/dashboard.js` and `/dashboard/mpreg-client.js` (code only, no data: served
   * without a token so that the page's module imports work).
   */
  dashboard?: Dashboard;
}

/**
 * The HTTP monitoring API: `GET /health`, `/ready`, `/metrics`, `/topology`, `/catalog`, and
 * with a {@link Dashboard} `/dashboard`. Read-only, so it never changes what the node does; anything else is 404.
 */
export class MonitoringServer {
  private server: Server | undefined;

  constructor(
    private readonly source: MonitoringSource,
    private readonly options: MonitoringOptions = {},
  ) {}

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      const [path, query] = splitUrl(req.url ?? "/");
      if (req.method !== "GET") {
        res.writeHead(405, { allow: "GET" }).end();
        return;
      }
      const dashboard = this.options.dashboard;
      if (dashboard !== undefined && path.startsWith("/dashboard/") && path.length > "/dashboard/".length) {
        const file = dashboard.asset(path.slice("/dashboard/".length));
        if (file === undefined) res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        else if (file instanceof Error) res.writeHead(503, { "content-type": "text/plain" }).end(file.message);
        else res.writeHead(200, { "content-type": file.contentType, "x-content-type-options": "nosniff" }).end(file.body);
        return;
      }
      const check = this.options.checkToken;
      if (check !== undefined) {
        const token = bearer(req) ?? new URLSearchParams(query).get("token") ?? undefined;
        if (token === undefined || !safeCheck(check, token)) {
          res.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Bearer realm="mpreg"' });
          res.end(JSON.stringify({ error: "unauthorized: send Authorization: Bearer <token>" }));
          return;
        }
      }
      const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      try {
        if (dashboard !== undefined && path === "/dashboard") {
          const page = dashboard.page();
          res.writeHead(200, { "content-type": page.contentType, ...DASHBOARD_HEADERS }).end(page.body);
          return;
        }
        if (dashboard !== undefined && path === "/dashboard/") {
          // The page loads its script relative to its own URL: keep it at /dashboard.
          res.writeHead(308, { location: `../dashboard${query === "" ? "" : `?${query}`}` }).end();
          return;
        }
        switch (path) {
          case "/health": {
            const h = this.source.health();
            json(h.status === "ok" ? 200 : 503, h);
            return;
          }
          case "/ready": {
            const r = this.source.ready?.() ?? { ready: true, reasons: [] };
            const stopping = this.source.health().status !== "ok";
            const answer = stopping ? { ready: false, reasons: ["node is stopping", ...r.reasons] } : r;
            json(answer.ready ? 200 : 503, answer);
            return;
          }
          case "/metrics":
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(this.source.metrics());
            return;
          case "/topology":
            json(200, this.source.topology());
            return;
          case "/catalog":
            json(200, this.source.catalog());
            return;
          default:
            json(404, {
              error: "not found",
              endpoints: ["/health", "/ready", "/metrics", "/topology", "/catalog", ...(dashboard !== undefined ? ["/dashboard"] : [])],
            });
        }
      } catch (e) {
        json(500, { error: String(e) });
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: NodeJS.ErrnoException) => {
        if (e.code !== "EADDRINUSE") return reject(e);
        // Say which listener: the client port is a different one, and the fix differs.
        const err = new Error(
          `monitoring port ${port} on ${host} is already in use: pick another with --monitoring-port N (or MPREG_MONITORING_PORT; 0 picks a free port)`,
        ) as NodeJS.ErrnoException & { listener: string };
        err.code = "EADDRINUSE";
        err.listener = "monitoring";
        reject(err);
      });
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
    if (!server.listening) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function splitUrl(url: string): [string, string] {
  const q = url.indexOf("?");
  return q < 0 ? [url, ""] : [url.slice(0, q), url.slice(q + 1)];
}

function bearer(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  return typeof auth === "string" && auth.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
}

/**
 * A `checkToken` accepting any of `tokens`, compared in constant time (hashes of equal length,
 * so neither the content nor the length of a token leaks through timing).
 */
export function tokenChecker(tokens: readonly string[]): (token: string) => boolean {
  const digests = tokens.map((t) => createHash("sha256").update(t).digest());
  return (token) => {
    const d = createHash("sha256").update(token).digest();
    let ok = false;
    for (const want of digests) ok = timingSafeEqual(d, want) || ok;
    return ok;
  };
}

function safeCheck(check: (token: string) => boolean, token: string): boolean {
  try {
    return check(token);
  } catch {
    return false;
  }
}
