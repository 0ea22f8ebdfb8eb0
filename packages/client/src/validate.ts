import { MpregError } from "@mpreg/envelope";
import { checkClientTlsShape } from "@mpreg/transport";
import type { ClientOptions } from "./client.js";

function bad(reason: string, path: string): never {
  throw MpregError.invalid(`client options: ${reason}`, path);
}

function positiveInt(v: unknown, path: string, max = Number.MAX_SAFE_INTEGER): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max)) {
    bad(`${path} must be an integer in [1, ${max}]`, path);
  }
}

function nonNegative(v: unknown, path: string, allowInfinity = false): void {
  if (v === undefined) return;
  if (allowInfinity && v === Infinity) return;
  if (!(typeof v === "number" && Number.isFinite(v) && v >= 0)) bad(`${path} must be a number >= 0`, path);
}

/**
 * Checks the options of `MpregClient.connect` / the constructor once, with errors (1002) that
 * name the option. Transport options are the transport's to check.
 */
export function checkClientOptions(o: ClientOptions): void {
  if (typeof o !== "object" || o === null) bad("options must be an object", "");
  if (o.token !== undefined && typeof o.token !== "string") bad("token must be a string", "token");
  if (o.batchPublishes !== undefined && typeof o.batchPublishes !== "boolean") bad("batchPublishes must be a boolean", "batchPublishes");
  positiveInt(o.maxPending, "maxPending");
  positiveInt(o.maxUrls, "maxUrls", 1024);
  positiveInt(o.timeoutMs, "timeoutMs", 3_600_000);
  nonNegative(o.deadlineGraceMs, "deadlineGraceMs");
  nonNegative(o.drainTimeoutMs, "drainTimeoutMs");
  const r = o.reconnect;
  if (r !== undefined && typeof r !== "boolean") {
    if (typeof r !== "object" || r === null) bad("reconnect must be a boolean or an object", "reconnect");
    nonNegative(r.initialDelayMs, "reconnect.initialDelayMs");
    nonNegative(r.maxDelayMs, "reconnect.maxDelayMs");
    nonNegative(r.maxAttempts, "reconnect.maxAttempts", true);
    nonNegative(r.stableAfterMs, "reconnect.stableAfterMs");
  }
  if (o.tls !== undefined) {
    if (o.transport?.tls !== undefined) bad("give tls or transport.tls, not both", "tls");
    checkClientTlsShape(o.tls, "tls");
  }
  const d = o.discovery;
  if (d !== undefined && typeof d !== "boolean") {
    if (typeof d !== "object" || d === null) bad("discovery must be a boolean or an object", "discovery");
    positiveInt(d.intervalMs, "discovery.intervalMs");
  }
}
