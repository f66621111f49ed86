import { InvalidOptionsError, JobLogError, QueryTimeoutError, ReadCancelledError } from '../errors.ts';
import type { ReadOptions } from '../types.ts';
import type { ActionName } from '../actions.ts';
import { ACTION_PATH, ActionDenied, applicableActions, checkActionRequest, formsFor, runAction, takeFlash, type ActionForm, type ActionTarget, type Flash } from './actions.ts';
import { checkToken } from './auth.ts';
import { crossSiteReason, Csrf, type Session } from './csrf.ts';
import type { Html } from './html.ts';
import { STYLE_HASH } from './layout.ts';
import { Limiter } from './limiter.ts';
import { createMetrics, listingSource, type MetricsRegistry } from '../metrics.ts';
import { parseDashboardOptions, type DashboardOptions, type ParsedDashboardOptions } from './options.ts';
import { errorPage } from './pages/error.ts';
import { jobPage } from './pages/job.ts';
import { jobListPage } from './pages/jobs.ts';
import { overviewPage } from './pages/overview.ts';
import { ATTENTION_WINDOW_MS, BadParameterError, parseJobId, parseListParams, parseOverviewParams, type OverviewParams } from './params.ts';

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

/** What every request of one dashboard shares. */
interface Dashboard {
  config: ParsedDashboardOptions;
  knownTypes: () => Promise<string[]>;
  limiter: Limiter;
  csrf: Csrf;
  /** `actions: true` or `authorize`: the pages offer buttons and the action routes take POSTs. */
  acting: boolean;
  /** The page of `/metrics` (its registry made on the first scrape); undefined without `metrics`. */
  metrics: ((request: Request) => Promise<Response>) | undefined;
}

/** What a page is built for: the request, and with actions on its session and flash. */
interface PageRequest {
  request: Request;
  url: URL;
  session?: Session;
  flash?: Flash;
  reads: ReadOptions;
}

/**
 * The web dashboard: overview, job list and job pages, server-rendered, no scripts; read-only
 * unless `actions` or `authorize` turns the action buttons on. Options are checked at once
 * (`InvalidOptionsError`).
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const config = parseDashboardOptions(options);
  const dashboard: Dashboard = {
    config,
    knownTypes: knownTypesOf(config),
    limiter: new Limiter(config.maxConcurrentQueries, config.queueWaitMs),
    csrf: new Csrf(config.actionSecret),
    acting: config.actions || config.authorize !== undefined,
    metrics: metricsOf(config),
  };
  return async (request) => {
    const method = request.method.toUpperCase();
    const head = method === 'HEAD';
    let response: Response;
    try {
      response = await respond(request, dashboard);
    } catch (error) {
      response = failure(request, config, error);
    }
    if (head) return new Response(null, { status: response.status, headers: response.headers });
    return response;
  };
}

function htmlResponse(status: number, body: Html, extra: Record<string, string> = {}, cookies: (string | undefined)[] = []): Response {
  const headers = new Headers({ ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', ...extra });
  for (const cookie of cookies) if (cookie) headers.append('set-cookie', cookie);
  return new Response(body.toString(), { status, headers });
}

async function respond(request: Request, dashboard: Dashboard): Promise<Response> {
  const { config, acting } = dashboard;
  const base = config.basePath;
  const url = new URL(request.url);
  const problem = (status: number, title: string, message: string, extra?: Record<string, string>, parameter?: string) =>
    htmlResponse(status, errorPage({ base, status, title, message, parameter }), extra);

  if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) {
    return problem(404, 'Not found', `This dashboard lives under ${base || '/'}.`);
  }
  const path = url.pathname.slice(base.length).replace(/\/+$/, '') || '/';
  const action = acting && request.method === 'POST' ? ACTION_PATH.exec(path) : null;
  if (!action && request.method !== 'GET' && request.method !== 'HEAD') {
    return acting
      ? problem(405, 'Method not allowed', 'Actions are POSTs of the job page\'s buttons; every page is GET or HEAD.', { allow: 'GET, HEAD, POST' })
      : problem(405, 'Method not allowed', 'The dashboard is read-only: GET and HEAD only.', { allow: 'GET, HEAD' });
  }

  // Before the credentials: a cross-site POST is a forgery whether or not the browser sent the cookie.
  const crossSite = action && crossSiteReason(request, url);
  if (crossSite) return problem(403, 'Forbidden', `Refused: ${crossSite}.`);
  const refused = await admit(request, url, config, problem);
  if (refused) return refused;

  const target = action ? await actionTarget(request, dashboard, action[1]!, action[2] as ActionName, url) : undefined;
  if (target instanceof Response) return target;

  const release = await dashboard.limiter.acquire(request.signal);
  if (!release) {
    return problem(503, 'Busy', `The dashboard is already reading for ${config.maxConcurrentQueries} other request(s); try again in a moment.`, {
      'retry-after': String(Math.ceil(config.statementTimeoutMs / 1000)),
    });
  }
  const reads: ReadOptions = { statementTimeoutMs: config.statementTimeoutMs, signal: request.signal };
  try {
    if (target) return await runAction(config, dashboard.csrf, request, url, target, reads);
    if (path === '/metrics' && dashboard.metrics) return await dashboard.metrics(request);
    const session = acting ? dashboard.csrf.session(request, url, base) : undefined;
    const flash = acting ? takeFlash(dashboard.csrf, request, url, base) : {};
    const body = await route(path, dashboard, { request, url, session, flash: flash.flash, reads });
    return htmlResponse(200, body, {}, [session?.cookie, flash.clear]);
  } catch (error) {
    if (error instanceof QueryTimeoutError) {
      return problem(503, 'Query timed out', `A query of this page ran longer than ${error.timeoutMs} ms and was cancelled. Narrow the window or the filters, or raise the dashboard's statementTimeoutMs.`);
    }
    // The request went away: no one reads this page.
    if (error instanceof ReadCancelledError) return problem(503, 'Cancelled', 'The request was closed before its page was built.');
    if (error instanceof BadParameterError) {
      return problem(400, 'Bad request', error.message, undefined, error.parameter);
    }
    const badQuery = refusedQuery(error);
    if (badQuery) return problem(400, 'Bad request', badQuery.message, undefined, badQuery.parameter);
    if (error instanceof NotFound) return problem(404, 'Not found', error.message);
    throw error;
  } finally {
    release();
  }
}

/** The action a POST asks for, once its permission, form and token are checked; else the refusal. */
async function actionTarget(request: Request, dashboard: Dashboard, segment: string, action: ActionName, url: URL): Promise<ActionTarget | Response> {
  const base = dashboard.config.basePath;
  const problem = (status: number, title: string, message: string, parameter?: string) =>
    htmlResponse(status, errorPage({ base, status, title, message, parameter }));
  try {
    const jid = parseJobId(segment, url.searchParams);
    return { action, jid, ...(await checkActionRequest(dashboard.config, dashboard.csrf, request, action, jid)) };
  } catch (error) {
    if (error instanceof ActionDenied) return problem(error.status, error.status === 403 ? 'Forbidden' : 'Bad request', error.message);
    if (error instanceof BadParameterError) return problem(400, 'Bad request', error.message, error.parameter);
    throw error;
  }
}

/** The token or the app's auth: null lets the request in, else the response that refuses it. */
async function admit(
  request: Request,
  url: URL,
  config: ParsedDashboardOptions,
  problem: (status: number, title: string, message: string, extra?: Record<string, string>) => Response,
): Promise<Response | null> {
  if (config.auth) {
    // Only true admits: a check that returns 'no', 1 or a Promise of an object keeps the door shut.
    if ((await config.auth(request)) !== true) return problem(403, 'Forbidden', 'The application did not let this request in.');
    return null;
  }
  const check = checkToken(request, url, config.token!, config.basePath);
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
      return null;
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
async function route(path: string, dashboard: Dashboard, page: PageRequest): Promise<Html> {
  const { config, knownTypes } = dashboard;
  const base = config.basePath;
  const { joblog } = config;
  const { url, reads } = page;

  if (path === '/') return overview(dashboard, page, parseOverviewParams(url.searchParams));
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
    const forms = page.session
      ? await formsFor(config, dashboard.csrf, page.request, page.session.id, row, applicableActions(row), 'job')
      : [];
    return jobPage(base, row, { showStacks: config.showStacks, forms, flash: page.flash });
  }
  throw new NotFound(`No page ${path}.`);
}

const ATTENTION_ROWS = 10;

/** The overview's five statements: stats (types, buckets), sections, the day's dead or failed jobs, its long waits. */
async function overview(dashboard: Dashboard, page: PageRequest, params: OverviewParams): Promise<Html> {
  const { config } = dashboard;
  const { joblog } = config;
  const { reads } = page;
  const until = new Date();
  const since = new Date(until.getTime() - params.window.ms);
  const stats = await joblog.stats({ since, until, bucket: params.window.bucket }, reads);
  const sections = await joblog.sections({ bossSchema: config.bossSchema }, reads).catch((error: unknown) => {
    // A log read without pg-boss's tables: the rest of the overview still stands.
    if (error instanceof JobLogError && error.code === 'BOSS_SCHEMA_MISSING') return { unavailable: error.message };
    throw error;
  });
  const day = new Date(until.getTime() - ATTENTION_WINDOW_MS);
  // `failed` too: a job that is not retried ends failed, not dead, and is as finished with.
  const dead = await joblog.find({ states: ['dead', 'failed'], since: day, limit: ATTENTION_ROWS }, reads);
  const waits = await joblog.find({ minWaitedMs: config.longWaitMs, since: day, limit: ATTENTION_ROWS }, reads);
  const releases = new Map<string, ActionForm>();
  if (page.session && Array.isArray(sections)) {
    for (const s of sections.filter((x) => x.stale)) {
      const [form] = await formsFor(config, dashboard.csrf, page.request, page.session.id, { ...s, state: 'started' }, ['release'], 'overview');
      if (form) releases.set(s.jid, form);
    }
  }
  return overviewPage({
    base: config.basePath,
    ...params,
    stats,
    sections,
    attention: { since: day, dead, waits, longWaitMs: config.longWaitMs },
    releases,
    flash: page.flash,
  });
}

/**
 * `/metrics`: the app's registry as given, or the job log's own (made once, on the first scrape).
 * A read of the log that fails is the scrape's `log_up 0`, and `onError` hears it with that scrape's request.
 */
function metricsOf(config: ParsedDashboardOptions): ((request: Request) => Promise<Response>) | undefined {
  const { metrics, joblog } = config;
  if (metrics === false) return undefined;
  let scrape: Request | undefined;
  const onError = (error: unknown) => onErrorOf(config)(error, scrape!);
  const options = { statementTimeoutMs: config.statementTimeoutMs };
  let made: Promise<MetricsRegistry> | undefined;
  const registry = (): Promise<MetricsRegistry> => {
    if (metrics !== true) return Promise.resolve(metrics);
    made ??= joblog.metrics ? joblog.metrics(options) : createMetrics(listingSource(joblog), options, { bossSchema: config.bossSchema, onError });
    made.catch(() => (made = undefined));
    return made;
  };
  return async (request) => {
    let r: MetricsRegistry;
    try {
      r = await registry();
    } catch (error) {
      if (!(error instanceof JobLogError && error.code === 'MISSING_PEER')) throw error;
      // A scraper reads text, not the HTML error page: say what to install, in its own words.
      onErrorOf(config)(error, request);
      return new Response(`${error.message}\n`, { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } });
    }
    scrape = request;
    return new Response(await r.metrics(), {
      status: 200,
      headers: { 'content-type': r.contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
    });
  };
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

const onErrorOf = (config: ParsedDashboardOptions) => config.onError ?? ((e: unknown) => console.error('joblog dashboard:', e));

function failure(request: Request, config: ParsedDashboardOptions, error: unknown): Response {
  onErrorOf(config)(error, request);
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
