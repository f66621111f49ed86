export { createDashboard, type DashboardHandler } from './handler.ts';
export type { DashboardJobLog, DashboardOptions } from './options.ts';
export { nodeListener, serve, type FetchHandler, type ServedDashboard, type ServeOptions } from './serve.ts';
