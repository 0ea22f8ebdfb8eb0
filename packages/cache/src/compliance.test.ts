import { describe, it } from "vitest";
import { MemoryBackend } from "@mpreg/persistence";
import { CacheService } from "./cache-service.js";
import { runPolicyComplianceSuite } from "./compliance.js";
import { POLICY_NAMES } from "./eviction-policy.js";

for (const policy of POLICY_NAMES) {
  runPolicyComplianceSuite(
    policy,
    () => ({
      policy,
      open: (ns, now) => CacheService.open({ nodeId: "n1", now, timers: false, config: { namespaces: { default: ns } } }),
    }),
    { describe, it },
  );
  runPolicyComplianceSuite(
    `${policy} with L2 (memory backend)`,
    () => ({
      policy,
      open: (ns, now) =>
        CacheService.open({
          nodeId: "n1",
          now,
          timers: false,
          backend: new MemoryBackend(),
          config: { namespaces: { default: { ...ns, l2: true } } },
        }),
    }),
    { describe, it },
  );
}
