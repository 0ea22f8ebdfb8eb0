import { describe, expect, it } from "vitest";
import { addressKey } from "./address-key.js";

describe("addressKey (per-address connection limit)", () => {
  it("counts IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64", () => {
    expect(addressKey("10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:0db8:0001:0002:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(addressKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(addressKey("64:ff9b::1.2.3.4")).toBe("64:ff9b:0:0::/64");
  });

  it("gives null for unknown or malformed addresses (not counted)", () => {
    for (const a of [undefined, "", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", "::1.2.3.999"]) expect(addressKey(a)).toBeNull();
  });
});
