import { z } from 'zod';
import { parseOptions } from '../options.ts';
import { DEFAULT_STATEMENT_TIMEOUT_MS, readOptionsSchema } from '../reads.ts';
import type { ActionName, ActionOptions, ActionResult } from '../actions.ts';
import type { MetricsOptions, MetricsRegistry } from '../metrics.ts';
import type { FindQuery, FindResult, HeldSection, JobLogRow, ReadOptions, SectionsQuery, StatsQuery, StatsResult } from '../types.ts';

/**
 * What the dashboard reads through: a `JobLog` (or anything with these four queries). Each read
 * is given the request's bounds: `statementTimeoutMs` and the request's abort signal.
 */
export interface DashboardJobLog {
  find(query: FindQuery, options?: ReadOptions): Promise<FindResult>;
  stats(query: StatsQuery, options?: ReadOptions): Promise<StatsResult>;
  sections(query?: SectionsQuery, options?: ReadOptions): Promise<HeldSection[]>;
  get(jid: string, options?: ReadOptions): Promise<JobLogRow | null>;
  /** Needed only with `actions` or `authorize`: `JobLog` has them. */
  retry?(jid: string, options?: ActionOptions): Promise<ActionResult>;
  cancel?(jid: string, options?: ActionOptions): Promise<ActionResult>;
  release?(jid: string, options?: ActionOptions): Promise<ActionResult>;
  /** Used by `metrics: true` when present (`JobLog` has it: this process's counters join the gauges). */
  metrics?(options?: MetricsOptions): Promise<MetricsRegistry>;
}

/** Options of `createDashboard`. Give `token` or `auth`, not both. */
export interface DashboardOptions {
  /** The app's job log (`createJobLog(...)`): every page reads through its queries. */
  joblog: DashboardJobLog;
  /**
   * The secret a visitor must show: `Authorization: Bearer <token>`, or `?token=<token>` once,
   * which sets an HttpOnly cookie. At least 16 characters.
   */
  token?: string;
  /** The host app's own check instead of a token: `true` lets the request in; anything else is a 403. */
  auth?: (request: Request) => boolean | Promise<boolean>;
  /** The path the handler is mounted under, e.g. `/admin/jobs`. Default `''` (the root). */
  basePath?: string;
  /** pg-boss's schema, for the state of each section holder's job. Default `pgboss`. */
  bossSchema?: string;
  /** The app's job types, offered as filters. Default: the types seen in the last 7 days. */
  jobTypes?: string[];
  /** Called with an unexpected error before the 500 page is sent. Default `console.error`. */
  onError?: (error: unknown, request: Request) => void;
  /**
   * The server cancels any statement of a page that runs longer; the page is then a 503.
   * Default 5000.
   */
  statementTimeoutMs?: number;
  /**
   * At most this many requests read the database at once (each holds one connection of the
   * app's pool while it reads). Default 2.
   */
  maxConcurrentQueries?: number;
  /** How long a request beyond `maxConcurrentQueries` waits for a turn before its 503. Default 1000. */
  queueWaitMs?: number;
  /**
   * Job pages show each error's stack (server file paths, line numbers). Default true; false
   * shows name, code and message only.
   */
  showStacks?: boolean;
  /**
   * `true` shows Retry, Cancel and Release buttons to everyone the dashboard lets in. Default
   * false: the dashboard is read-only (every POST is a 405). Give `actions` or `authorize`, not both.
   */
  actions?: boolean;
  /**
   * Turns actions on, asking the app for each one: `true` allows it (and shows its button);
   * anything else refuses it with a 403 and hides the button.
   */
  authorize?: (request: Request, action: ActionName) => boolean | Promise<boolean>;
  /**
   * Who asked, recorded in the row's history (`by`): e.g. the signed-in user's e-mail. Default
   * (or when it returns undefined, null or '') `'dashboard'`.
   */
  actor?: (request: Request) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * The key of the forms' CSRF tokens. Default a random key per `createDashboard` call: give
   * the same secret (at least 32 characters) to every process that serves the dashboard behind
   * one address, or a form rendered by one process is refused by another.
   */
  actionSecret?: string;
  /**
   * Serve Prometheus metrics at `<basePath>/metrics`, behind the same token or auth (Prometheus
   * sends the token as `authorization: Bearer`; see docs/metrics.md). `true`: the job log's
   * metrics (`joblog.metrics()`); a prom-client `Registry`: that registry, e.g. the app's own with
   * `joblog.metrics({ registry })` in it. Default false: no such page.
   */
  metrics?: boolean | MetricsRegistry;
  /** The overview's "needs attention" lists jobs of the last day that waited at least this long for their section. Default 60000. */
  longWaitMs?: number;
}

const fn = (what: string) =>
  z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function', { message: `expected ${what}` });

const joblogSchema = z.custom<DashboardJobLog>(
  (v) =>
    typeof v === 'object' && v !== null &&
    ['find', 'stats', 'sections', 'get'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
  { message: 'expected the job log (createJobLog(...)): an object with find, stats, sections and get' },
);

const basePathSchema = z
  .string()
  .transform((p) => p.replace(/\/+$/, ''))
  .refine((p) => p === '' || /^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/.test(p), {
    message: "expected '' or a path such as '/admin/jobs' (no query, no percent-escapes)",
  });

export const dashboardOptionsSchema = z
  .strictObject({
    joblog: joblogSchema,
    token: z.string().min(16, 'use at least 16 characters, e.g. crypto.randomBytes(24).toString("base64url")').optional(),
    auth: fn('a function (request) => boolean | Promise<boolean>').optional(),
    basePath: basePathSchema.default(''),
    bossSchema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a plain schema name').default('pgboss'),
    jobTypes: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected job type names')).optional(),
    onError: fn('a function (error, request) => void').optional(),
    statementTimeoutMs: readOptionsSchema.shape.statementTimeoutMs.unwrap().default(DEFAULT_STATEMENT_TIMEOUT_MS),
    maxConcurrentQueries: z.int().min(1).max(1000).default(2),
    queueWaitMs: z.int().min(0).max(60_000).default(1000),
    showStacks: z.boolean().default(true),
    longWaitMs: z.int().min(1).max(2 ** 31 - 1).default(60_000),
    actions: z.boolean().default(false),
    metrics: z.union([
      z.boolean(),
      z.custom<MetricsRegistry>((v) => typeof v === 'object' && v !== null && typeof (v as MetricsRegistry).metrics === 'function' && typeof (v as MetricsRegistry).contentType === 'string'),
    ], { message: 'expected true, false or a prom-client Registry' }).default(false),
    authorize: fn('a function (request, action) => boolean | Promise<boolean>').optional(),
    actor: fn('a function (request) => string | undefined').optional(),
    actionSecret: z.string().min(32, 'use at least 32 characters, e.g. crypto.randomBytes(32).toString("base64url")').optional(),
  })
  .superRefine((o, ctx) => {
    if (o.token === undefined && o.auth === undefined) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: 'give a token, or auth (the host app\'s own check); the dashboard never runs open' });
    }
    if (o.token !== undefined && o.auth !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth'], message: 'give token or auth, not both' });
    }
    if (o.actions && o.authorize !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['authorize'], message: 'give actions: true or authorize, not both (authorize turns actions on)' });
    }
    const acting = o.actions || o.authorize !== undefined;
    const log = o.joblog as unknown as Record<string, unknown>;
    const missing = ACTIONS.filter((a) => typeof log[a] !== 'function');
    if (acting && missing.length) {
      ctx.addIssue({ code: 'custom', path: ['joblog'], message: `actions need a job log with ${missing.join(', ')} (createJobLog(...) has them)` });
    }
    if (!acting) {
      for (const key of ['actor', 'actionSecret'] as const) {
        if (o[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'only used with actions: true or authorize; turn actions on or leave it out' });
      }
    }
  });

export const ACTIONS: readonly ActionName[] = ['retry', 'cancel', 'release'];

export type ParsedDashboardOptions = z.output<typeof dashboardOptionsSchema>;

export function parseDashboardOptions(options: DashboardOptions): ParsedDashboardOptions {
  return parseOptions(dashboardOptionsSchema, options, 'createDashboard');
}
