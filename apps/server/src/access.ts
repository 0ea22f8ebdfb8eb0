import { MpregError } from "@mpreg/envelope";
import type { UpgradeInfo } from "@mpreg/transport";

/** Scopes a client token can carry. `admin` may call administrative functions; `client` may not. */
export type Scope = "admin" | "client";

const SCOPES: readonly Scope[] = ["admin", "client"];

/**
 * Who may do what, from `authTokens` entries written `token` (full access, as before scopes) or
 * `token:scope`. Without tokens, administrative functions are allowed only from loopback.
 */
export class AccessPolicy {
  /** The bare tokens, for the listener's upgrade check. */
  readonly tokens: string[];
  private readonly scopes = new Map<string, Scope>();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const colon = entry.lastIndexOf(":");
      const token = colon < 0 ? entry : entry.slice(0, colon);
      const scope = colon < 0 ? "admin" : entry.slice(colon + 1);
      if (token.length === 0) throw MpregError.invalid(`authTokens entry "${entry}" has an empty token`, "authTokens");
      if (!(SCOPES as readonly string[]).includes(scope)) {
        throw MpregError.invalid(`authTokens entry "${token}:…" has unknown scope "${scope}" (use ${SCOPES.join(" or ")})`, "authTokens");
      }
      this.scopes.set(token, scope as Scope);
    }
    this.tokens = [...this.scopes.keys()];
  }

  /** True when the connection may call administrative functions. */
  isAdmin(info: UpgradeInfo): boolean {
    if (this.scopes.size === 0) return isLoopback(info.remoteAddress);
    if (!info.authenticated) return false;
    const token = bearer(info) ?? info.query.get("token") ?? "";
    return this.scopes.get(token) === "admin";
  }

  /**
   * A loud warning for a node reachable beyond loopback without client tokens (anyone may call),
   * without a cluster secret as well (anyone may join as a peer), or without TLS (anyone on the
   * path may read and change the traffic, tokens included); undefined when none applies.
   */
  exposureWarning(host: string, hasSecret: boolean, hasTls = false): string | undefined {
    if (isLoopback(host)) return undefined;
    const problems: string[] = [];
    if (this.scopes.size === 0) {
      problems.push(
        "without --auth-tokens: anyone who can reach this port may call every function" +
          (hasSecret ? "" : ", and without --cluster-secret anyone may join as a peer") +
          " (administrative functions stay loopback-only)",
      );
    }
    if (!hasTls) {
      problems.push(`without --tls-cert/--tls-key: traffic is plaintext ws://, anyone on the path may read and change it${this.scopes.size > 0 ? " (client tokens included)" : ""}`);
    }
    if (problems.length === 0) return undefined;
    return `SECURITY: listening on ${host} ${problems.join("; ")}. See docs/security.md.`;
  }
}

function bearer(info: UpgradeInfo): string | undefined {
  const auth = info.headers.authorization;
  return typeof auth === "string" && auth.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
}

/** Loopback addresses and names (IPv4 127/8, ::1, IPv4-mapped, `localhost`). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  return a === "::1" || a === "localhost" || a.startsWith("127.");
}
