import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  peerHelloSigningString,
  peerWelcomeSigningString,
  type PeerHelloFields,
  type PeerWelcomeFields,
} from "@mpreg/envelope";

/** Protocol version spoken on peer links; a peer with another major version is refused. */
export const PEER_PROTOCOL_VERSION = 1;

/** A fresh handshake nonce (128 random bits, hex). */
export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

function hmac(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text, "utf8").digest("hex");
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** MAC of a peer-hello under the cluster secret (PROTOCOL section 8). */
export function helloMac(secret: string, hello: PeerHelloFields): string {
  return hmac(secret, peerHelloSigningString(hello));
}

/** MAC of a peer-welcome; it covers the nonce of the hello it answers (no replay). */
export function welcomeMac(secret: string, welcome: PeerWelcomeFields, helloNonce: string): string {
  return hmac(secret, peerWelcomeSigningString(welcome, helloNonce));
}

/** True when no secret is configured, or when `mac` is the right one (constant-time compare). */
export function macOk(secret: string | undefined, mac: string | undefined, expected: () => string): boolean {
  if (secret === undefined) return true;
  return typeof mac === "string" && equalHex(mac, expected());
}
