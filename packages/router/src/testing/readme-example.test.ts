import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RouteTable, TopicTrie, serviceAllows, type RoutePolicies } from "@mpreg/router";
import { naiveTopicMatch, routeAnnouncementsArb, topicArb, topicPatternArb } from "@mpreg/router/testing";

// Our import policy: partners never offer us admin functions, and we take no route to the
// quarantined cluster from them.
const policies: RoutePolicies = {
  import: [{ neighbour: "*", clusters: { deny: ["quarantine"] }, functions: { deny: ["admin."] } }],
};

describe("our routing", () => {
  it("whatever partners announce, in any order, admin functions never pass and quarantine stays unreachable", () => {
    const neighbours = ["partner-a", "partner-b"];
    const announcements = routeAnnouncementsArb({
      receiver: "us",
      neighbours,
      destinations: ["partner-a", "partner-b", "eu", "quarantine"],
      transit: ["eu", "us", "quarantine"], // "us" in a path is a loop the table must refuse
      offers: true,
      adversarial: true, // also paths that are looped or do not start at the advertiser
    });
    fc.assert(
      fc.property(announcements, (updates) => {
        const table = new RouteTable({ localCluster: "us", epoch: 1, policies });
        for (const n of neighbours) table.linkUp(n, 0);
        for (const { from, update } of updates) table.receive(from, update, 0);

        expect(table.bestRoute("quarantine")).toBeUndefined();
        for (const route of table.routes()) {
          if (route.destination === "us") continue; // our own route offers everything
          expect(serviceAllows(route.offers, "function", "admin.reset")).toBe(false);
          expect(route.path[0]).toBe("us");
          expect(new Set(route.path).size).toBe(route.path.length);
        }
      }),
    );
  });

  it("our subscription index finds exactly the handlers whose pattern matches", () => {
    const subscriptions = fc.array(fc.tuple(topicPatternArb(), fc.constantFrom("audit", "billing", "mailer")), { maxLength: 20 });
    fc.assert(
      fc.property(subscriptions, fc.array(topicArb(), { maxLength: 10 }), (subs, topics) => {
        const index = new TopicTrie<string>();
        for (const [pattern, handler] of subs) index.add(pattern, handler);
        for (const topic of topics) {
          const expected = new Set(subs.filter(([pattern]) => naiveTopicMatch(pattern, topic)).map(([, handler]) => handler));
          expect(index.match(topic)).toEqual(expected);
        }
      }),
    );
  });
});
