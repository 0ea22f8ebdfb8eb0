/**
 * The key under which connections from `address` are counted by the per-address limit: an
 * IPv4 address as is (also when IPv4-mapped, `::ffff:1.2.3.4`), an IPv6 address by its /64
 * prefix (one host usually gets a whole /64, so counting single IPv6 addresses would limit
 * nothing). Null when the address is unknown or unparsable (such connections are not counted).
 */
export function addressKey(address: string | undefined): string | null {
  if (address === undefined || address.length === 0) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const groups = expandIpv6(address.split("%")[0]!);
  return groups === null ? null : `${groups.slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lowercase hex without leading zeros; null if malformed. */
function expandIpv6(a: string): string[] | null {
  const halves = a.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  // An embedded IPv4 tail (e.g. 64:ff9b::1.2.3.4) is two groups.
  const last = tail.length > 0 ? tail : head;
  const v4 = last.length > 0 ? /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(last[last.length - 1]!) : null;
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) return null;
    last.splice(last.length - 1, 1, ((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16));
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => parseInt(g, 16).toString(16));
}
