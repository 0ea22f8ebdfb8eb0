import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { LINKS_KEY_PREFIX, LinkOverlay, MAX_ANNOUNCED_LINKS } from "./link-state.js";

function overlay(self: string, own: string[], dead: string[] = []) {
  const links = new Set(own);
  const gone = new Set(dead);
  const o = new LinkOverlay({ selfId: self, ownLinks: () => links, isLive: (id) => !gone.has(id) });
  return { o, links, gone };
}

const key = (id: string) => LINKS_KEY_PREFIX + id;

describe("LinkOverlay", () => {
  it("announces sorted own links with a version above the clock, the last one and what gossip holds", () => {
    const { o, links } = overlay("a", ["c", "b"]);
    expect(o.announcementDue).toBe(true);
    const first = o.announcement(1000);
    expect(first).toEqual({ key: key("a"), version: 1000, data: ["b", "c"] });
    expect(o.announcementDue).toBe(false);
    links.delete("c");
    o.linksChanged();
    expect(o.announcementDue).toBe(true);
    // Same millisecond: still higher. A held version from a previous run: above it.
    expect(o.announcement(1000).version).toBe(1001);
    expect(o.announcement(1000, 5000)).toMatchObject({ version: 5001, data: ["b"] });
  });

  it("property: announcement versions strictly increase whatever the clock does", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 })), { maxLength: 30 }), (steps) => {
        const { o } = overlay("a", ["b"]);
        let last = 0;
        for (const [now, held] of steps) {
          const v = o.announcement(now, held).version;
          expect(v).toBeGreaterThan(last);
          expect(v).toBeGreaterThan(held);
          last = v;
        }
      }),
    );
  });

  it("routes over mutually announced links; ignores other items, malformed and dead members' announcements", () => {
    const { o, gone } = overlay("a", ["b"]);
    expect(o.onItem("fn/x", {})).toBe(false);
    expect(o.route("c")).toBeUndefined();
    expect(o.onItem(key("b"), ["a", "c"])).toBe(true);
    expect(o.route("c")).toBeUndefined(); // c has not confirmed the b–c link yet
    o.onItem(key("c"), ["b", "d"]);
    expect(o.route("c")).toEqual({ next: "b", hops: 2 });
    o.onItem(key("d"), "not a list");
    o.onItem(key("d"), Array.from({ length: MAX_ANNOUNCED_LINKS + 1 }, (_, i) => `x${i}`));
    expect(o.route("d")).toBeUndefined();
    gone.add("d");
    o.onItem(key("d"), ["c"]);
    expect(o.route("d")).toBeUndefined();
    // d is live again: its held announcement is used.
    gone.delete("d");
    o.memberUp("d", { key: key("d"), version: 7, data: ["c"] });
    expect(o.route("d")).toEqual({ next: "b", hops: 3 });
    // c is declared dead: nothing routes through it any more.
    gone.add("c");
    o.memberGone("c");
    expect(o.route("c")).toBeUndefined();
    expect(o.route("d")).toBeUndefined();
    expect(o.knownAnnouncements).toBe(2);
  });

  it("our own key arriving from elsewhere makes a new announcement due", () => {
    const { o } = overlay("a", ["b"]);
    o.announcement(10);
    expect(o.onItem(key("a"), ["zzz"])).toBe(true);
    expect(o.announcementDue).toBe(true);
  });

  it("recomputes routes when own links change", () => {
    const { o, links } = overlay("a", ["b"]);
    o.onItem(key("b"), ["a", "c"]);
    o.onItem(key("c"), ["b"]);
    expect(o.route("c")?.hops).toBe(2);
    links.add("c");
    o.linksChanged();
    expect(o.route("c")).toEqual({ next: "c", hops: 1 });
    links.clear();
    o.invalidate();
    expect(o.routes().size).toBe(0);
  });

  it("redirects to a linked neighbour chosen by the caller's pick, none without links", () => {
    const { o, links } = overlay("a", ["c", "b"]);
    expect(o.redirect(0)).toBe("b");
    expect(o.redirect(0.99)).toBe("c");
    links.clear();
    expect(o.redirect(0.5)).toBeUndefined();
  });
  it("dials live, unlinked members other than itself while below maxLinks", () => {
    const links = new Set(["b"]);
    const dead = new Set(["x"]);
    const o = new LinkOverlay({ selfId: "a", ownLinks: () => links, isLive: (id) => !dead.has(id), maxLinks: 2 });
    expect(o.shouldDial("a")).toBe(false);
    expect(o.shouldDial("b")).toBe(false);
    expect(o.shouldDial("x")).toBe(false);
    expect(o.shouldDial("c")).toBe(true);
    links.add("c");
    expect(o.shouldDial("d")).toBe(false);
    const unbounded = new LinkOverlay({ selfId: "a", ownLinks: () => links, isLive: () => true });
    expect(unbounded.shouldDial("d")).toBe(true);
  });
});
