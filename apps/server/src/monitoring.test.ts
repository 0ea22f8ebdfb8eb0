import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dashboard } from "@mpreg/dashboard";
import { MonitoringServer, tokenChecker, type MonitoringSource, type Readiness } from "./monitoring.js";

let servers: MonitoringServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

function source(over: Partial<MonitoringSource> & { status?: "ok" | "stopping" } = {}): MonitoringSource {
  return {
    health: () => ({ status: over.status ?? "ok", node_id: "n1", cluster_id: "c", uptime_ms: 5 }),
    metrics: () => "# TYPE mpreg_x counter\nmpreg_x 1\n",
    topology: () => ({ node_id: "n1", clusters: [], links: [] }),
    catalog: () => ({ entries: [] }),
    ...over,
  };
}

async function serve(src: MonitoringSource, options = {}): Promise<string> {
  const s = new MonitoringServer(src, options);
  servers.push(s);
  return s.listen("127.0.0.1", 0);
}

describe("MonitoringServer", () => {
  it("serves every endpoint with its shape; 404 names the endpoints; only GET", async () => {
    const url = await serve(source());
    const health = await fetch(`${url}/health`);
    expect([health.status, await health.json()]).toEqual([200, { status: "ok", node_id: "n1", cluster_id: "c", uptime_ms: 5 }]);
    expect(await (await fetch(`${url}/ready`)).json()).toEqual({ ready: true, reasons: [] });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await metrics.text()).toBe("# TYPE mpreg_x counter\nmpreg_x 1\n");
    expect(await (await fetch(`${url}/topology`)).json()).toEqual({ node_id: "n1", clusters: [], links: [] });
    expect(await (await fetch(`${url}/catalog`)).json()).toEqual({ entries: [] });
    const missing = await fetch(`${url}/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).endpoints).toContain("/ready");
    expect((await fetch(`${url}/health`, { method: "POST" })).status).toBe(405);
  });

  it("/ready answers 503 with the reasons until the callback says ready, and while stopping", async () => {
    let r: Readiness = { ready: false, reasons: ["raft group kv has no leader"] };
    let status: "ok" | "stopping" = "ok";
    const url = await serve(source({ ready: () => r, health: () => ({ status, node_id: "n1", cluster_id: "c", uptime_ms: 1 }) }));
    const first = await fetch(`${url}/ready`);
    expect([first.status, await first.json()]).toEqual([503, { ready: false, reasons: ["raft group kv has no leader"] }]);
    r = { ready: true, reasons: [] };
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    status = "stopping";
    const stopping = await fetch(`${url}/ready`);
    expect([stopping.status, (await stopping.json()).reasons]).toEqual([503, ["node is stopping"]]);
  });

  it("with a token check, refuses requests without a valid bearer token (header or ?token=)", async () => {
    const url = await serve(source(), { checkToken: (t: string) => t === "s3cret" });
    for (const path of ["/health", "/ready", "/metrics", "/topology", "/catalog"]) {
      const r = await fetch(`${url}${path}`);
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
    expect((await fetch(`${url}/health`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${url}/health`, { headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
    expect((await fetch(`${url}/metrics?token=s3cret`)).status).toBe(200);
    const throwing = await serve(source(), { checkToken: () => { throw new Error("x"); } });
    expect((await fetch(`${throwing}/health?token=a`)).status).toBe(401);
  });

  it("a callback that throws is a 500, and the server keeps serving", async () => {
    const url = await serve(source({ topology: () => { throw new Error("broken view"); } }));
    const r = await fetch(`${url}/topology`);
    expect([r.status, (await r.json()).error]).toEqual([500, "Error: broken view"]);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it("a monitoring port in use says so and how to pick another", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const s = new MonitoringServer(source());
      servers.push(s);
      await expect(s.listen("127.0.0.1", port)).rejects.toMatchObject({
        code: "EADDRINUSE",
        listener: "monitoring",
        message: expect.stringMatching(new RegExp(`^monitoring port ${port} on 127\\.0\\.0\\.1 is already in use: pick another with --monitoring-port N`)),
      });
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("tokenChecker accepts exactly the configured tokens", () => {
    const check = tokenChecker(["alpha", "b"]);
    expect([check("alpha"), check("b"), check("alph"), check("alphaa"), check(""), check("B")]).toEqual([true, true, false, false, false, false]);
    expect(tokenChecker([])("anything")).toBe(false);
  });

  describe("/dashboard", () => {
    let dir: string;
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    function dashboard(clientUrl = "ws://127.0.0.1:6666"): Dashboard {
      dir = mkdtempSync(join(tmpdir(), "mpreg-dash-"));
      writeFileSync(join(dir, "dashboard.js"), "export const page = 1;");
      writeFileSync(join(dir, "mpreg-client.js"), "export const client = 1;");
      return new Dashboard({ clientUrl: () => clientUrl, assetsDir: dir });
    }

    it("serves the page behind the token, with a strict CSP; the bundles without a token", async () => {
      const url = await serve(source(), { checkToken: (t: string) => t === "s3cret", dashboard: dashboard('ws://h:1/"><script>') });
      expect((await fetch(`${url}/dashboard`)).status).toBe(401);
      const page = await fetch(`${url}/dashboard?token=s3cret`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      expect(page.headers.get("content-security-policy")).toMatch(/script-src 'self';/);
      expect(page.headers.get("referrer-policy")).toBe("no-referrer");
      const html = await page.text();
      expect(html).toContain('<script type="module" src="dashboard/dashboard.js"></script>');
      // The client URL lands in an attribute, escaped: it cannot open a tag.
      expect(html).toContain('data-client-url="ws://h:1/&#34;&#62;&#60;script&#62;"');
      const js = await fetch(`${url}/dashboard/mpreg-client.js`);
      expect([js.status, js.headers.get("content-type"), await js.text()]).toEqual([200, "text/javascript; charset=utf-8", "export const client = 1;"]);
      expect((await fetch(`${url}/dashboard/dashboard.js`)).status).toBe(200);
      // Only the two bundles: no path into the file system.
      for (const p of ["/dashboard/..%2Fpackage.json", "/dashboard/../dashboard.js", "/dashboard/other.js"]) {
        expect((await fetch(`${url}${p}`)).status, p).not.toBe(200);
      }
    });

    it("/dashboard/ redirects to /dashboard keeping the query; without a dashboard it is 404", async () => {
      const url = await serve(source(), { dashboard: dashboard() });
      const r = await fetch(`${url}/dashboard/?token=x`, { redirect: "manual" });
      expect([r.status, r.headers.get("location")]).toEqual([308, "../dashboard?token=x"]);
      expect((await (await fetch(`${url}/nope`)).json()).endpoints).toContain("/dashboard");
      const bare = await serve(source());
      expect((await fetch(`${bare}/dashboard`)).status).toBe(404);
      expect((await fetch(`${bare}/dashboard/dashboard.js`)).status).toBe(404);
    });

    it("missing bundles are a 503 that says to build", async () => {
      const d = new Dashboard({ clientUrl: () => "ws://x", assetsDir: "/nonexistent-mpreg" });
      dir = mkdtempSync(join(tmpdir(), "mpreg-dash-"));
      const url = await serve(source(), { dashboard: d });
      const r = await fetch(`${url}/dashboard/dashboard.js`);
      expect([r.status, await r.text()]).toEqual([503, expect.stringContaining("run pnpm build")]);
    });
  });
});
