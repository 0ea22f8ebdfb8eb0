/**
 * The dashboard page's code (browser only; bundled into `dist/browser/dashboard.js`). It talks to
 * the node as any client does: `@mpreg/client` (served beside it as `mpreg-client.js`) calls the
 * `cluster_map` and `list_peers` built-ins for the topology and the functions of each node, and
 * `/metrics` is scraped for the rates. Query parameters: `token` (sent to both), `url` (another
 * node to dial), `interval` (poll period in ms, 500–60000, default 2000).
 *
 * Everything shown is written with `textContent` / SVG attributes, never as HTML, so a function
 * or node name cannot inject markup.
 */
import { MpregClient } from "@mpreg/client";
import { isBuiltinFunction, topologyView, type ClusterMapNode, type PeerEntry, type TopologyNode, type TopologyView } from "@mpreg/cli/topology-view";
import { DASHBOARD_RATES, RateTracker, browserClientUrl, gauge, parseMetrics, type RatePoint } from "./dashboard-model.js";

const SVG = "http://www.w3.org/2000/svg";
const CLUSTER_COLORS = ["#2f6fde", "#d97706", "#7c3aed", "#0d9488", "#db2777", "#65a30d"];

type Child = Node | string | null | undefined | false;

/** An element with attributes and children (strings become text nodes, never HTML). */
function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function s(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`dashboard page has no #${id}`);
  return el;
}

function fmt(n: number | null): string {
  if (n === null) return "–";
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

function routeText(n: TopologyNode): string {
  if (n.self) return "this node";
  if (n.next_hop === null) return "no route";
  if (n.next_hop === n.node_id) return "direct link";
  return `via ${n.next_hop}${n.hops === null ? "" : ` (${n.hops} hops)`}`;
}

/** Nodes on a circle (the viewer in the middle); links from the viewer as the routes say. */
function renderGraph(view: TopologyView): SVGElement {
  const size = 320;
  const c = size / 2;
  const svg = s("svg", { viewBox: `0 0 ${size} ${size}`, width: "100%", role: "img", "aria-label": "topology graph" });
  const all = view.clusters.flatMap((cl, ci) => cl.nodes.map((n) => ({ n, color: CLUSTER_COLORS[ci % CLUSTER_COLORS.length]! })));
  const others = all.filter((x) => !x.n.self);
  const pos = new Map<string, { x: number; y: number }>();
  const r = others.length <= 1 ? 100 : 120;
  others.forEach((x, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, others.length) - Math.PI / 2;
    pos.set(x.n.node_id, { x: c + r * Math.cos(a), y: c + r * Math.sin(a) });
  });
  for (const x of all) if (x.n.self) pos.set(x.n.node_id, { x: c, y: c });
  for (const l of view.links) {
    // A direct link is drawn from the viewer; a relayed route from its first hop, dashed.
    const from = l.next_hop === l.to ? pos.get(l.from) : l.next_hop === null ? undefined : pos.get(l.next_hop);
    const to = pos.get(l.to);
    if (from === undefined || to === undefined) continue;
    const line = s("line", { x1: from.x, y1: from.y, x2: to.x, y2: to.y, stroke: "currentColor", "stroke-opacity": 0.45, "stroke-width": 1.5 });
    if (l.next_hop !== l.to) line.setAttribute("stroke-dasharray", "4 3");
    line.setAttribute("data-link", `${l.from}->${l.to}`);
    svg.append(line);
  }
  for (const x of all) {
    const p = pos.get(x.n.node_id)!;
    const g = s("g", { "data-node": x.n.node_id });
    const alive = x.n.status === "alive";
    g.append(s("circle", { cx: p.x, cy: p.y, r: x.n.self ? 14 : 11, fill: alive ? x.color : "#999", stroke: x.n.self ? "currentColor" : "none", "stroke-width": 2 }));
    g.append(s("text", { x: p.x, y: p.y + (x.n.self ? 28 : 24), "text-anchor": "middle" }, x.n.node_id));
    svg.append(g);
  }
  return svg;
}

function renderClusters(view: TopologyView): HTMLElement {
  const wrap = h("div");
  view.clusters.forEach((cl, ci) => {
    const alive = cl.nodes.filter((n) => n.status === "alive").length;
    const color = CLUSTER_COLORS[ci % CLUSTER_COLORS.length]!;
    wrap.append(
      h("h3", { style: `font-size:14px;margin:4px 0 8px;color:${color}` }, `cluster ${cl.cluster_id}`, h("span", { class: "muted" }, ` · ${cl.nodes.length} nodes, ${alive} alive`)),
    );
    const grid = h("div", { class: "nodes" });
    for (const n of cl.nodes) {
      const own = n.functions.filter((f) => !isBuiltinFunction(f));
      const builtins = n.functions.length - own.length;
      grid.append(
        h(
          "div",
          { class: n.self ? "node self" : "node", "data-node-id": n.node_id },
          h("h3", {}, n.node_id),
          h(
            "div",
            {},
            h("span", { class: n.status === "alive" ? "status-ok" : "status-bad" }, n.status),
            h("span", { class: "muted" }, ` · ${routeText(n)}${n.load === null ? "" : ` · load ${n.load}`}${n.region ? ` · ${n.region}` : ""}`),
          ),
          h("div", { class: "muted" }, n.urls.join(" ") || "(no url)"),
          h(
            "div",
            { class: "fns" },
            ...(own.length > 0 ? own.map((f) => h("span", { class: "fn" }, f)) : [h("span", { class: "muted" }, "no functions of its own")]),
            builtins > 0 ? h("span", { class: "muted" }, ` +${builtins} built-in`) : null,
          ),
        ),
      );
    }
    wrap.append(grid);
  });
  return wrap;
}

function renderFunctions(view: TopologyView, point: RatePoint | undefined): HTMLElement {
  const providers = new Map<string, string[]>();
  for (const cl of view.clusters) for (const n of cl.nodes) for (const f of n.functions) if (!isBuiltinFunction(f)) providers.set(f, [...(providers.get(f) ?? []), n.node_id]);
  const names = [...providers.keys()].sort();
  if (names.length === 0) return h("div", { class: "muted" }, "no functions besides the built-ins");
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, h("th", {}, "function"), h("th", {}, "nodes"), h("th", {}, "requests/s here"))),
    h(
      "tbody",
      {},
      ...names.map((f) => h("tr", { "data-function": f }, h("td", {}, h("span", { class: "fn" }, f)), h("td", {}, providers.get(f)!.join(", ")), h("td", {}, fmt(point?.functions[f] ?? (point ? 0 : null))))),
    ),
  );
}

function renderRates(point: RatePoint | undefined, samples: ReturnType<typeof parseMetrics>): HTMLElement[] {
  const card = (key: string, label: string, value: string) => h("div", { class: "rate", "data-rate": key }, h("div", { class: "v" }, value), h("div", { class: "k" }, label));
  return [
    ...DASHBOARD_RATES.map((r) => card(r.key, r.label, point ? fmt(point.rates[r.key]) : "…")),
    card("latency", "mean latency ms", point ? fmt(point.meanLatencyMs) : "…"),
    card("connections", "client connections", String(gauge(samples, "mpreg_connections") ?? "–")),
    card("peer_links", "peer links", String(gauge(samples, "mpreg_peer_links") ?? "–")),
  ];
}

/** Requests/s and messages in/s over the kept history, with a legend. */
function renderSpark(history: readonly RatePoint[]): HTMLElement {
  const max = Math.max(1, ...history.flatMap((p) => [p.rates.requests, p.rates.frames]));
  return h(
    "div",
    { style: "margin-top:10px" },
    h("div", { class: "muted", style: "font-size:12px" }, h("span", { style: "color:#2f6fde" }, "━ requests/s"), "  ", h("span", { style: "color:#d97706" }, "━ messages in/s"), ` · scale 0–${fmt(max)} · last ${history.length} polls`),
    sparkLines(history, max),
  );
}

function sparkLines(history: readonly RatePoint[], max: number): SVGElement {
  const w = 600;
  const hgt = 60;
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: "100%", height: hgt, preserveAspectRatio: "none", "aria-label": "rates over time" });
  if (history.length < 2) return svg;
  const line = (key: "requests" | "frames", color: string) => {
    const pts = history.map((p, i) => `${((i / (history.length - 1)) * w).toFixed(1)},${(hgt - 2 - (p.rates[key] / max) * (hgt - 4)).toFixed(1)}`);
    svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
  };
  line("frames", "#d97706");
  line("requests", "#2f6fde");
  return svg;
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") ?? undefined;
  const url = params.get("url") ?? browserClientUrl(document.body.dataset["clientUrl"] ?? "", location.hostname);
  const intervalMs = Math.min(60_000, Math.max(500, Number(params.get("interval")) || 2000));
  const metricsUrl = new URL("metrics", location.href).href;
  const tracker = new RateTracker();
  const conn = byId("conn");
  const error = byId("error");
  let view: TopologyView | undefined;
  let client: MpregClient | undefined;

  const setConn = (text: string, ok: boolean) => {
    conn.textContent = text;
    conn.className = ok ? "status-ok" : "status-bad";
  };

  const poll = async () => {
    const problems: string[] = [];
    try {
      client ??= await MpregClient.connect(url, token !== undefined ? { token } : {});
      setConn(`● connected to ${client.url ?? url}`, client.state === "open");
      const [map, peers] = await Promise.all([client.call("cluster_map"), client.call("list_peers")]);
      const m = map as { cluster_id?: string; generated_at?: number; nodes: ClusterMapNode[] };
      view = topologyView(m, peers as PeerEntry[], client.nodeId);
      byId("node-id").textContent = view.node_id ?? "?";
      byId("cluster-id").textContent = m.cluster_id ?? "?";
      byId("graph").replaceChildren(renderGraph(view));
      byId("clusters").replaceChildren(renderClusters(view));
    } catch (e) {
      setConn(client === undefined ? "○ cannot connect" : `○ ${client.state}`, false);
      problems.push(`topology: ${(e as Error).message}`);
    }
    try {
      const res = await fetch(metricsUrl, { cache: "no-store", headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} });
      if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
      const samples = parseMetrics(await res.text());
      const point = tracker.push(samples, Date.now());
      const latest = point ?? tracker.history().at(-1);
      byId("rates").replaceChildren(...renderRates(latest, samples));
      byId("spark").replaceChildren(renderSpark(tracker.history()));
      if (view !== undefined) byId("functions").replaceChildren(renderFunctions(view, latest));
    } catch (e) {
      problems.push(`metrics: ${(e as Error).message}`);
    }
    error.textContent = problems.join("\n");
    byId("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset["polls"] = String(Number(document.body.dataset["polls"] ?? "0") + 1);
  };

  // One poll at a time: the next starts `intervalMs` after the previous one finished.
  const loop = async () => {
    await poll();
    setTimeout(() => void loop(), intervalMs);
  };
  await loop();
}

void main();
