/**
 * Entry of `dist/browser/mpreg-client.js`: `@mpreg/client` bundled for browsers (its transport's
 * `browser` entry, no Node modules), served by the monitoring API at `/dashboard/mpreg-client.js`.
 */
export * from "@mpreg/client";
