import { z } from 'zod';
import { parseOptions } from '../options.ts';
import type { FindQuery, FindResult, HeldSection, JobLogRow, SectionsQuery, StatsQuery, StatsResult } from '../types.ts';

/** What the dashboard reads through: a `JobLog` (or anything with these four queries). */
export interface DashboardJobLog {
  find(query: FindQuery): Promise<FindResult>;
  stats(query: StatsQuery): Promise<StatsResult>;
  sections(query?: SectionsQuery): Promise<HeldSection[]>;
  get(jid: string): Promise<JobLogRow | null>;
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
  /** The host app's own check instead of a token: true lets the request in, false is a 403. */
  auth?: (request: Request) => boolean | Promise<boolean>;
  /** The path the handler is mounted under, e.g. `/admin/jobs`. Default `''` (the root). */
  basePath?: string;
  /** pg-boss's schema, for the state of each section holder's job. Default `pgboss`. */
  bossSchema?: string;
  /** The app's job types, offered as filters. Default: the types seen in the last 7 days. */
  jobTypes?: string[];
  /** Called with an unexpected error before the 500 page is sent. Default `console.error`. */
  onError?: (error: unknown, request: Request) => void;
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
  })
  .superRefine((o, ctx) => {
    if (o.token === undefined && o.auth === undefined) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: 'give a token, or auth (the host app\'s own check); the dashboard never runs open' });
    }
    if (o.token !== undefined && o.auth !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth'], message: 'give token or auth, not both' });
    }
  });

export type ParsedDashboardOptions = z.output<typeof dashboardOptionsSchema>;

export function parseDashboardOptions(options: DashboardOptions): ParsedDashboardOptions {
  return parseOptions(dashboardOptionsSchema, options, 'createDashboard');
}
