// Durations and points in the past as users write them: on the command line ('30d') and in
// code (milliseconds, Dates, ISO strings). Dates are read by dates.ts, the one date parser.
import { checkedSchema, ok, problem, unreadable, type Checked } from './checked.ts';
import { checkDate, DATE_FORMAT } from './dates.ts';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** The longest duration accepted anywhere (retention, --since): 50 years of 365 days. */
export const DURATION_MAX_MS = 50 * 365 * UNIT_MS.d!;

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
const DURATION_FORMAT = "a duration such as '30d', '12h', '15m', '90s', '2w' or milliseconds";

/** Milliseconds of a duration: a positive number of milliseconds or text such as '30d'. */
export function checkDuration(value: unknown): Checked<number> {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else {
    const match = typeof value === 'string' ? DURATION.exec(value) : null;
    if (!match) return unreadable(`expected ${DURATION_FORMAT}`);
    ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  if (!Number.isFinite(ms) || ms <= 0) return problem('must be a positive duration');
  if (ms > DURATION_MAX_MS) return problem(`must be at most 50 years (${DURATION_MAX_MS} ms, 18250d)`);
  return ok(ms);
}

export const durationSchema = checkedSchema(checkDuration);

/** Milliseconds of `'90s' | '15m' | '12h' | '30d' | '2w' | '500ms'`, or null if it is not one (or too long). */
export function parseDuration(text: string): number | null {
  const result = checkDuration(text);
  return result.ok ? result.value : null;
}

/** A point in the past: a Date or ISO 8601 string as is, a duration as "that long before `now`". */
export function checkPointInPast(value: unknown, now: Date = new Date()): Checked<Date> {
  if (value instanceof Date || (typeof value === 'string' && /^\d{4}-/.test(value))) return checkDate(value);
  if (typeof value !== 'number' && !(typeof value === 'string' && DURATION.test(value))) {
    return unreadable(`expected ${DURATION_FORMAT}, a Date, or ${DATE_FORMAT}`);
  }
  const ms = checkDuration(value);
  return ms.ok ? ok(new Date(now.getTime() - ms.value)) : ms;
}

export const pointInPastSchema = checkedSchema((v) => checkPointInPast(v));
