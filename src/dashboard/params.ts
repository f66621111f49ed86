// Query parameters of the dashboard's pages, checked before anything reaches the job log:
// a wrong one is a 400 page that names it. Unknown parameters are refused too (a misspelt
// filter that is silently ignored shows the wrong jobs). Empty values count as absent, so the
// filter form's blank fields do nothing.
import type { Checked } from '../checked.ts';
import { checkDate } from '../dates.ts';
import { checkGroup, checkUserId } from '../ids.ts';
import type { JobState } from '../types.ts';

export const STATES: readonly JobState[] = ['started', 'finished', 'failed', 'dead', 'skipped'];

/** A query parameter the page cannot use. */
export class BadParameterError extends Error {
  readonly parameter: string;

  constructor(parameter: string, message: string) {
    super(`${parameter}: ${message}`);
    this.name = 'BadParameterError';
    this.parameter = parameter;
  }
}

export interface Window {
  key: string;
  ms: number;
  /** For `joblog.stats({ bucket })`. */
  bucket: string;
  bucketMs: number;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** The overview's windows and the chart bucket of each (24 to 72 bars). */
export const WINDOWS: readonly Window[] = [
  { key: '1h', ms: HOUR, bucket: '1 minute', bucketMs: 60_000 },
  { key: '6h', ms: 6 * HOUR, bucket: '5 minutes', bucketMs: 5 * 60_000 },
  { key: '24h', ms: DAY, bucket: '1 hour', bucketMs: HOUR },
  { key: '7d', ms: 7 * DAY, bucket: '6 hours', bucketMs: 6 * HOUR },
  { key: '30d', ms: 30 * DAY, bucket: '1 day', bucketMs: DAY },
];
export const DEFAULT_WINDOW = '24h';

export interface ListFilters {
  user?: string;
  types: string[];
  states: JobState[];
  group?: string;
  since?: Date;
  until?: Date;
  jid?: string;
  limit: number;
  cursor?: string;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
const MAX_TEXT = 500;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads one page's parameters; refuses any not in `allowed`. */
class Params {
  readonly #search: URLSearchParams;

  constructor(search: URLSearchParams, allowed: readonly string[]) {
    this.#search = search;
    for (const key of new Set(search.keys())) {
      if (!allowed.includes(key)) {
        const known = allowed.length ? `known here: ${allowed.join(', ')}` : 'this page takes none';
        throw new BadParameterError(key, `unknown parameter (${known})`);
      }
    }
  }

  /** One value, trimmed; undefined when absent or blank. */
  one(name: string): string | undefined {
    const values = this.#values(name);
    if (values.length > 1) throw new BadParameterError(name, 'give it once');
    return values[0];
  }

  /** Every value; a value may also list several, comma-separated. */
  all(name: string): string[] {
    return this.#values(name).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  }

  /**
   * A user id or group: exactly as sent (never trimmed, like everywhere else in the library),
   * checked by the library's one rule for ids.
   */
  id(name: string, check: (value: unknown) => Checked<string>): string | undefined {
    const values = this.#search.getAll(name).filter((v) => v !== '');
    if (values.length > 1) throw new BadParameterError(name, 'give it once');
    if (values[0] === undefined) return undefined;
    const result = check(values[0]);
    if (!result.ok) throw new BadParameterError(name, result.problem);
    return result.value;
  }

  #values(name: string): string[] {
    const values = this.#search.getAll(name).map((v) => v.trim()).filter(Boolean);
    for (const v of values) {
      if (v.length > MAX_TEXT) throw new BadParameterError(name, `at most ${MAX_TEXT} characters`);
    }
    return values;
  }

  date(name: string): Date | undefined {
    const value = this.one(name);
    if (value === undefined) return undefined;
    // The links write a zone; a datetime-local input sends none, read as UTC like every time on the page.
    const date = checkDate(value, { zoneless: 'utc' });
    if (!date.ok) throw new BadParameterError(name, `${date.problem} (e.g. 2026-11-30T04:00, read as UTC)`);
    return date.value;
  }

  int(name: string, min: number, max: number): number | undefined {
    const value = this.one(name);
    if (value === undefined) return undefined;
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new BadParameterError(name, `expected a whole number from ${min} to ${max}`);
    return n;
  }
}

/** "Needs attention" looks at the last day, whatever the window. */
export const ATTENTION_WINDOW_MS = DAY;

export const DEFAULT_REFRESH_SECONDS = 30;
const MIN_REFRESH_SECONDS = 5;
const MAX_REFRESH_SECONDS = 3600;

export interface OverviewParams {
  window: Window;
  /** Seconds between reloads of the page; null when the person switched it off (`?refresh=off`). */
  refresh: number | null;
}

/** `?window=` and `?refresh=` (`off`, or seconds) of the overview. */
export function parseOverviewParams(search: URLSearchParams): OverviewParams {
  const params = new Params(search, ['window', 'refresh']);
  const key = params.one('window') ?? DEFAULT_WINDOW;
  const window = WINDOWS.find((w) => w.key === key);
  if (!window) throw new BadParameterError('window', `expected one of ${WINDOWS.map((w) => w.key).join(', ')}`);
  if (params.one('refresh') === 'off') return { window, refresh: null };
  const refresh = params.int('refresh', MIN_REFRESH_SECONDS, MAX_REFRESH_SECONDS) ?? DEFAULT_REFRESH_SECONDS;
  return { window, refresh };
}

/** The overview's query string: the defaults left out, so that the address says what was chosen. */
export function overviewQuery({ window, refresh }: { window: Window; refresh: number | null }): URLSearchParams {
  const q = new URLSearchParams();
  if (window.key !== DEFAULT_WINDOW) q.set('window', window.key);
  if (refresh === null) q.set('refresh', 'off');
  else if (refresh !== DEFAULT_REFRESH_SECONDS) q.set('refresh', String(refresh));
  return q;
}

/** The filters of the job list: the ones `joblog.find` takes. */
export function parseListParams(search: URLSearchParams): ListFilters {
  const params = new Params(search, ['user', 'type', 'state', 'group', 'since', 'until', 'jid', 'limit', 'cursor']);
  const types = params.all('type');
  for (const t of types) {
    if (!TYPE.test(t)) throw new BadParameterError('type', `'${t}' is not a job type name (letters, digits and _)`);
  }
  const states = params.all('state');
  for (const s of states) {
    if (!STATES.includes(s as JobState)) throw new BadParameterError('state', `'${s}' is not one of ${STATES.join(', ')}`);
  }
  const jid = params.one('jid');
  if (jid !== undefined && !UUID.test(jid)) throw new BadParameterError('jid', 'expected a job id (UUID)');
  const since = params.date('since');
  const until = params.date('until');
  if (since && until && since >= until) throw new BadParameterError('until', 'must be later than since');
  return {
    user: params.id('user', checkUserId),
    types: [...new Set(types)],
    states: [...new Set(states)] as JobState[],
    group: params.id('group', checkGroup),
    since,
    until,
    jid: jid?.toLowerCase(),
    limit: params.int('limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT,
    cursor: params.one('cursor'),
  };
}

/** A job page takes no parameters; its id is in the path. */
export function parseJobId(segment: string, search: URLSearchParams): string {
  new Params(search, []);
  let jid: string;
  try {
    jid = decodeURIComponent(segment);
  } catch {
    throw new BadParameterError('jid', 'expected a job id (UUID) in the path');
  }
  if (!UUID.test(jid)) throw new BadParameterError('jid', 'expected a job id (UUID) in the path');
  return jid.toLowerCase();
}

/** The query string of a job list with these filters (blank ones left out). */
export function listQuery(filters: Partial<ListFilters>): URLSearchParams {
  const q = new URLSearchParams();
  if (filters.user) q.set('user', filters.user);
  for (const t of filters.types ?? []) q.append('type', t);
  for (const s of filters.states ?? []) q.append('state', s);
  if (filters.group) q.set('group', filters.group);
  if (filters.since) q.set('since', filters.since.toISOString());
  if (filters.until) q.set('until', filters.until.toISOString());
  if (filters.jid) q.set('jid', filters.jid);
  if (filters.limit && filters.limit !== DEFAULT_LIMIT) q.set('limit', String(filters.limit));
  if (filters.cursor) q.set('cursor', filters.cursor);
  return q;
}
