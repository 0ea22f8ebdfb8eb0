import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  peerConfirmSigningString,
  peerHelloSigningString,
  peerWelcomeSigningString,
  type PeerHelloFields,
  type PeerWelcomeFields,
} from "@mpreg/envelope";

/**
 * Version of the node-to-node protocol spoken on peer links; a peer announcing another one is
 * refused (4401). Version 2 added `peer-confirm` (the mutual, replay-proof handshake).
 */
export const PEER_PROTOCOL_VERSION = 2;

/** A fresh handshake nonce (128 random bits, hex). */
export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

function hmac(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text, "utf8").digest("hex");
}

function equalText(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** MAC of a `peer-hello` under the cluster secret. It proves the secret, not freshness. */
export function helloMac(secret: string, hello: PeerHelloFields): string {
  return hmac(secret, peerHelloSigningString(hello));
}

/** MAC of a `peer-welcome`: covers the hello's nonce and the dialer's id (fresh for the dialer). */
export function welcomeMac(secret: string, welcome: PeerWelcomeFields, helloNonce: string, dialerId: string): string {
  return hmac(secret, peerWelcomeSigningString(welcome, helloNonce, dialerId));
}

/** MAC of a `peer-confirm`: both ids and both nonces (fresh for the listener). */
export function confirmMac(secret: string, dialerId: string, listenerId: string, helloNonce: string, welcomeNonce: string): string {
  return hmac(secret, peerConfirmSigningString(dialerId, listenerId, helloNonce, welcomeNonce));
}

/** True when no secret is configured, or when `mac` is the expected one (constant-time compare). */
export function macOk(secret: string | undefined, mac: string | undefined, expected: () => string): boolean {
  if (secret === undefined) return true;
  return typeof mac === "string" && equalText(mac, expected());
}
