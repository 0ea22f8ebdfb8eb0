/**
 * @mpreg/dashboard: the dashboard page of an MPREG node. The browser code (`dashboard-app.ts`,
 * bundled with `@mpreg/client` into `dist/browser/`) talks to a node as any client does; the
 * node's monitoring API serves the page and the bundles through {@link Dashboard}.
 */
export { DASHBOARD_ASSETS, DASHBOARD_HEADERS, Dashboard, type DashboardFile, type DashboardOptions } from "./dashboard.js";
/** How the page reads `/metrics` (exported so a node's tests can check it reads what the node writes). */
export { gauge, parseMetrics, sumMetric, type MetricSample } from "./dashboard-model.js";
