import { errorCodeName } from "@mpreg/envelope";
import type { FabricStats } from "@mpreg/fabric";

/** Counters of one node, rendered in Prometheus text format by the monitoring API. */
export class NodeMetrics {
  connectionsOpened = 0;
  framesIn = 0;
  requests = 0;
  private readonly errors = new Map<number, number>();

  countError(code: number): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /**
   * @param gauges current values
   * @param relay the fabric's counters (multi-hop forwarding, handshakes)
   */
  render(gauges: { connections: number; functions: number; peerLinks: number }, relay: FabricStats, services: string[] = []): string {
    const lines = [
      "# TYPE mpreg_connections gauge",
      `mpreg_connections ${gauges.connections}`,
      "# TYPE mpreg_functions gauge",
      `mpreg_functions ${gauges.functions}`,
      "# TYPE mpreg_peer_links gauge",
      `mpreg_peer_links ${gauges.peerLinks}`,
      "# TYPE mpreg_relay_forwarded_total counter",
      `mpreg_relay_forwarded_total ${relay.relayed}`,
      "# TYPE mpreg_relay_gossip_sent_total counter",
      `mpreg_relay_gossip_sent_total ${relay.gossipRelayed}`,
      "# TYPE mpreg_relay_dropped_total counter",
      `mpreg_relay_dropped_total{reason="loop"} ${relay.droppedLoop}`,
      `mpreg_relay_dropped_total{reason="hops_exhausted"} ${relay.droppedHops}`,
      `mpreg_relay_dropped_total{reason="no_route"} ${relay.droppedNoRoute}`,
      `mpreg_relay_dropped_total{reason="too_large"} ${relay.droppedTooLarge}`,
      `mpreg_relay_dropped_total{reason="forged_path"} ${relay.droppedForged}`,
      "# TYPE mpreg_fabric_unhandled_total counter",
      `mpreg_fabric_unhandled_total ${relay.unhandled}`,
      "# TYPE mpreg_peer_handshakes_refused_total counter",
      `mpreg_peer_handshakes_refused_total ${relay.handshakesRefused}`,
      "# TYPE mpreg_connections_opened_total counter",
      `mpreg_connections_opened_total ${this.connectionsOpened}`,
      "# TYPE mpreg_frames_received_total counter",
      `mpreg_frames_received_total ${this.framesIn}`,
      "# TYPE mpreg_rpc_requests_total counter",
      `mpreg_rpc_requests_total ${this.requests}`,
      "# TYPE mpreg_errors_total counter",
    ];
    for (const [code, n] of [...this.errors].sort((a, b) => a[0] - b[0])) {
      lines.push(`mpreg_errors_total{code="${code}",name="${errorCodeName(code)}"} ${n}`);
    }
    lines.push("# TYPE process_resident_memory_bytes gauge", `process_resident_memory_bytes ${process.memoryUsage.rss()}`);
    lines.push(...services);
    return `${lines.join("\n")}\n`;
  }
}

/**
 * A service's numeric statistics as Prometheus gauges named `mpreg_<service>_<stat>` (camelCase
 * turned to snake_case); non-numeric fields are skipped. `stats` is one object, or one object per
 * label value (e.g. per cache namespace, labelled `{namespace="..."}`).
 */
export function statsLines(service: string, stats: object | { label: string; value: string; stats: object }[]): string[] {
  const sets = Array.isArray(stats) ? stats : [{ label: "", value: "", stats }];
  const byName = new Map<string, string[]>();
  for (const set of sets) {
    for (const [key, value] of Object.entries(set.stats)) {
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      const name = `mpreg_${service}_${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
      const labels = set.label ? `{${set.label}="${set.value.replace(/["\\\n]/g, "_")}"}` : "";
      const lines = byName.get(name) ?? [];
      lines.push(`${name}${labels} ${value}`);
      byName.set(name, lines);
    }
  }
  return [...byName].flatMap(([name, lines]) => [`# TYPE ${name} gauge`, ...lines]);
}
