import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The files of the dashboard: the page (`GET /dashboard`) and its two browser bundles, built by
 * `pnpm build` into `dist/browser/`: `dashboard.js` (the page's code) and `mpreg-client.js`
 * (`@mpreg/client` for browsers, an ES module any page may import).
 */
export const DASHBOARD_ASSETS = ["dashboard.js", "mpreg-client.js"] as const;

/** What the page needs from the node. */
export interface DashboardOptions {
  /** The node's client URL (`ws://host:port`), read when the page is served. */
  clientUrl: () => string;
  /** Where the built bundles are; default: `dist/browser/` next to the running code. */
  assetsDir?: string;
}

/** A response body with its content type. */
export interface DashboardFile {
  body: string;
  contentType: string;
}

/**
 * Serves the dashboard. The page holds no data of its own: its script connects to the node with
 * `@mpreg/client` (with the page's `?token=`) and fetches `/metrics`, so the same token rules
 * apply to what it shows. The bundles are read once and kept.
 */
export class Dashboard {
  private readonly cache = new Map<string, string>();

  constructor(private readonly options: DashboardOptions) {}

  /** The HTML page. */
  page(): DashboardFile {
    return { body: dashboardHtml(this.options.clientUrl()), contentType: "text/html; charset=utf-8" };
  }

  /**
   * A bundle by file name, undefined for a name that is not one, or an `Error` saying how to
   * build the bundles when they are missing (a node run from source without `pnpm build`).
   */
  asset(name: string): DashboardFile | Error | undefined {
    if (!(DASHBOARD_ASSETS as readonly string[]).includes(name)) return undefined;
    let body = this.cache.get(name);
    if (body === undefined) {
      const dirs = this.options.assetsDir !== undefined ? [this.options.assetsDir] : defaultAssetDirs();
      for (const dir of dirs) {
        try {
          body = readFileSync(`${dir}/${name}`, "utf8");
          break;
        } catch {
          // try the next place
        }
      }
      if (body === undefined) return new Error(`dashboard bundle ${name} not found in ${dirs.join(" or ")}: run pnpm build`);
      this.cache.set(name, body);
    }
    return { body, contentType: "text/javascript; charset=utf-8" };
  }
}

/** `dist/browser/` beside the built code, or (running from `src/`) beside the package's dist. */
function defaultAssetDirs(): string[] {
  return [fileURLToPath(new URL("./browser", import.meta.url)), fileURLToPath(new URL("../dist/browser", import.meta.url))];
}

/**
 * Response headers of the page: scripts only from the node itself (no inline script, so a
 * function name shown on the page can never run), WebSocket connections to any node, and no
 * Referer (the URL may carry the token).
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; connect-src 'self' ws: wss:; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function dashboardHtml(clientUrl: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MPREG dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #6b7385; --bg: #f6f7fa; --card: #fff; --line: #dde1ea; --accent: #2f6fde; --ok: #1f9d55; --bad: #d64545; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #9aa3b5; --bg: #141820; --card: #1d2230; --line: #2e3545; --accent: #6d9cff; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--card); flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
  section h2 { font-size: 15px; margin: 0 0 10px; }
  .muted { color: var(--muted); }
  .status-ok { color: var(--ok); } .status-bad { color: var(--bad); }
  .rates { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; }
  .rate { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
  .rate .v { font-size: 22px; font-variant-numeric: tabular-nums; }
  .rate .k { color: var(--muted); font-size: 12px; }
  .topology { display: grid; grid-template-columns: minmax(260px, 360px) 1fr; gap: 16px; align-items: start; }
  @media (max-width: 800px) { .topology { grid-template-columns: 1fr; } }
  svg text { fill: var(--fg); font-size: 11px; }
  .nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 10px; }
  .node { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
  .node.self { border-color: var(--accent); }
  .node h3 { font-size: 14px; margin: 0 0 4px; }
  .fn { display: inline-block; margin: 2px 4px 0 0; padding: 1px 6px; border-radius: 4px; background: var(--bg); border: 1px solid var(--line); font-family: ui-monospace, monospace; font-size: 12px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
  th { color: var(--muted); font-weight: 500; }
  #error { color: var(--bad); white-space: pre-wrap; }
</style>
</head>
<body data-client-url="${escapeHtml(clientUrl)}">
<header>
  <h1>MPREG</h1>
  <span>node <b id="node-id">…</b></span>
  <span>cluster <b id="cluster-id">…</b></span>
  <span id="conn" class="muted">connecting…</span>
  <span id="updated" class="muted"></span>
</header>
<main>
  <div id="error"></div>
  <section><h2>Rates on this node</h2><div id="rates" class="rates"></div><div id="spark"></div></section>
  <section><h2>Topology</h2><div class="topology"><div id="graph"></div><div id="clusters"></div></div></section>
  <section><h2>Functions</h2><div id="functions"></div></section>
</main>
<script type="module" src="dashboard/dashboard.js"></script>
</body>
</html>
`;
}
