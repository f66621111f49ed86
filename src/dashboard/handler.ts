import { InvalidOptionsError, JobLogError, QueryTimeoutError, ReadCancelledError } from '../errors.ts';
import type { ReadOptions } from '../types.ts';
import { checkToken } from './auth.ts';
import type { Html } from './html.ts';
import { STYLE_HASH } from './layout.ts';
import { Limiter } from './limiter.ts';
import { parseDashboardOptions, type DashboardOptions, type ParsedDashboardOptions } from './options.ts';
import { errorPage } from './pages/error.ts';
import { jobPage } from './pages/job.ts';
import { jobListPage } from './pages/jobs.ts';
import { overviewPage } from './pages/overview.ts';
import { BadParameterError, parseJobId, parseListParams, parseOverviewParams } from './params.ts';

/** A Fetch API request handler: mount it in any server that speaks `Request` / `Response`. */
export type DashboardHandler = (request: Request) => Promise<Response>;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    'img-src data:',
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const KNOWN_TYPES_TTL_MS = 60_000;
const KNOWN_TYPES_WINDOW_MS = 7 * 86400_000;

/** Maps the job log's option paths back to the query parameters they came from. */
const PARAMETER_OF: Record<string, string> = { userId: 'user', types: 'type', states: 'state' };

/**
 * The web dashboard: overview, job list and job pages, read-only, server-rendered, no scripts.
 * Options are checked at once (`InvalidOptionsError`).
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const config = parseDashboardOptions(options);
  const knownTypes = knownTypesOf(config);
  const limiter = new Limiter(config.maxConcurrentQueries, config.queueWaitMs);
  return async (request) => {
    const method = request.method.toUpperCase();
    const head = method === 'HEAD';
    let response: Response;
    try {
      response = await respond(request, config, knownTypes, limiter);
    } catch (error) {
      response = failure(request, config, error);
    }
    if (head) return new Response(null, { status: response.status, headers: response.headers });
    return response;
  };
}

async function respond(
  request: Request,
  config: ParsedDashboardOptions,
  knownTypes: () => Promise<string[]>,
  limiter: Limiter,
): Promise<Response> {
  const base = config.basePath;
  const url = new URL(request.url);
  const page = (status: number, body: Html, extra: Record<string, string> = {}) =>
    new Response(body.toString(), { status, headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', ...extra } });
  const problem = (status: number, title: string, message: string, extra?: Record<string, string>, parameter?: string) =>
    page(status, errorPage({ base, status, title, message, parameter }), extra);

  if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) {
    return problem(404, 'Not found', `This dashboard lives under ${base || '/'}.`);
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return problem(405, 'Method not allowed', 'The dashboard is read-only: GET and HEAD only.', { allow: 'GET, HEAD' });
  }

  if (config.auth) {
    // Only true admits: a check that returns 'no', 1 or a Promise of an object keeps the door shut.
    if ((await config.auth(request)) !== true) return problem(403, 'Forbidden', 'The application did not let this request in.');
  } else {
    const check = checkToken(request, url, config.token!, base);
    switch (check.outcome) {
      case 'missing':
        return problem(401, 'Token required', 'Open the dashboard with ?token=<token> once, or send Authorization: Bearer <token>.', {
          'www-authenticate': 'Bearer realm="joblog dashboard"',
        });
      case 'wrong':
        return problem(403, 'Forbidden', `The token (${check.via}) is not this dashboard's.`);
      case 'set-cookie':
        return new Response(null, { status: 303, headers: { ...SECURITY_HEADERS, location: check.location, 'set-cookie': check.cookie } });
      case 'ok':
        break;
    }
  }

  const release = await limiter.acquire(request.signal);
  if (!release) {
    return problem(503, 'Busy', `The dashboard is already reading for ${config.maxConcurrentQueries} other request(s); try again in a moment.`, {
      'retry-after': String(Math.ceil(config.statementTimeoutMs / 1000)),
    });
  }
  try {
    return page(200, await route(url, config, knownTypes, { statementTimeoutMs: config.statementTimeoutMs, signal: request.signal }));
  } catch (error) {
    if (error instanceof QueryTimeoutError) {
      return problem(503, 'Query timed out', `A query of this page ran longer than ${error.timeoutMs} ms and was cancelled. Narrow the window or the filters, or raise the dashboard's statementTimeoutMs.`);
    }
    // The request went away: no one reads this page.
    if (error instanceof ReadCancelledError) return problem(503, 'Cancelled', 'The request was closed before its page was built.');
    if (error instanceof BadParameterError) {
      return problem(400, 'Bad request', error.message, undefined, error.parameter);
    }
    const refused = refusedQuery(error);
    if (refused) return problem(400, 'Bad request', refused.message, undefined, refused.parameter);
    if (error instanceof NotFound) return problem(404, 'Not found', error.message);
    throw error;
  } finally {
    release();
  }
}

class NotFound extends Error {}

/**
 * A query the job log refused (a cursor from elsewhere, a window it will not chart): the
 * parameter it came from, named like the page's own checks do.
 */
function refusedQuery(error: unknown): { parameter: string | undefined; message: string } | null {
  let path: string | undefined;
  let message: string;
  if (error instanceof InvalidOptionsError) {
    path = error.issues[0]?.path;
    message = error.issues[0]?.message ?? error.message;
  } else if (error instanceof JobLogError && (error.code === 'INVALID_OPTIONS' || error.code === 'INVALID_CURSOR')) {
    const line = /^\s+- ([\w.]+): (.*)$/m.exec(error.message);
    path = line?.[1];
    message = line?.[2] ?? error.message;
  } else {
    return null;
  }
  const field = path?.split('.')[0];
  const parameter = field ? (PARAMETER_OF[field] ?? field) : undefined;
  return { parameter, message: parameter ? `${parameter}: ${message}` : message };
}

// A page's reads run one after another: a request holds at most one connection of the pool.
async function route(url: URL, config: ParsedDashboardOptions, knownTypes: () => Promise<string[]>, reads: ReadOptions): Promise<Html> {
  const base = config.basePath;
  const path = url.pathname.slice(base.length).replace(/\/+$/, '') || '/';
  const { joblog } = config;

  if (path === '/') {
    const { window } = parseOverviewParams(url.searchParams);
    const until = new Date();
    const since = new Date(until.getTime() - window.ms);
    const stats = await joblog.stats({ since, until, bucket: window.bucket }, reads);
    const sections = await joblog.sections({ bossSchema: config.bossSchema }, reads).catch((error: unknown) => {
      // A log read without pg-boss's tables: the rest of the overview still stands.
      if (error instanceof JobLogError && error.code === 'BOSS_SCHEMA_MISSING') return { unavailable: error.message };
      throw error;
    });
    return overviewPage({ base, window, stats, sections });
  }
  if (path === '/jobs') {
    const filters = parseListParams(url.searchParams);
    const result = await joblog.find(
      {
        ...(filters.user === undefined ? {} : { userId: filters.user }),
        ...(filters.types.length ? { types: filters.types } : {}),
        ...(filters.states.length ? { states: filters.states } : {}),
        ...(filters.group === undefined ? {} : { group: filters.group }),
        ...(filters.since ? { since: filters.since } : {}),
        ...(filters.until ? { until: filters.until } : {}),
        ...(filters.jid === undefined ? {} : { jid: filters.jid }),
        limit: filters.limit,
        ...(filters.cursor === undefined ? {} : { cursor: filters.cursor }),
      },
      reads,
    );
    return jobListPage({ base, filters, result, knownTypes: await knownTypes() });
  }
  const job = /^\/jobs\/([^/]+)$/.exec(path);
  if (job) {
    const jid = parseJobId(job[1]!, url.searchParams);
    const row = await joblog.get(jid, reads);
    if (!row) throw new NotFound(`No job ${jid} in the log.`);
    return jobPage(base, row, { showStacks: config.showStacks });
  }
  throw new NotFound(`No page ${path}.`);
}

/** The app's job types when given, else those seen in the last 7 days (read at most once a minute). */
function knownTypesOf(config: ParsedDashboardOptions): () => Promise<string[]> {
  if (config.jobTypes) {
    const types = [...config.jobTypes];
    return async () => types;
  }
  let cached: { at: number; types: Promise<string[]> } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > KNOWN_TYPES_TTL_MS) {
      // Shared by the requests of the next minute: bounded in time, not by one request's signal.
      const types = config.joblog
        .stats({ since: new Date(now - KNOWN_TYPES_WINDOW_MS) }, { statementTimeoutMs: config.statementTimeoutMs })
        .then((s) => s.byType.map((t) => t.jobType));
      types.catch(() => (cached = undefined));
      cached = { at: now, types };
    }
    return cached.types;
  };
}

function failure(request: Request, config: ParsedDashboardOptions, error: unknown): Response {
  (config.onError ?? ((e: unknown) => console.error('joblog dashboard:', e)))(error, request);
  const body = errorPage({
    base: config.basePath,
    status: 500,
    title: 'Internal error',
    message: 'The page could not be built; the application has been told why.',
  });
  return new Response(body.toString(), {
    status: 500,
    headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' },
  });
}
