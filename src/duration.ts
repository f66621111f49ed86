// Durations and points in time as users write them: on the command line ('30d') and in code
// (milliseconds, Dates, ISO strings).

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;

/** Milliseconds of `'90s' | '15m' | '12h' | '30d' | '2w' | '500ms'`, or null if it is not one. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

/** A Date from a Date or an ISO 8601 string, or null if it is neither (or invalid). */
export function parseDate(value: unknown): Date | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value.trim())) return null;
  const date = new Date(value.trim());
  return Number.isNaN(date.getTime()) ? null : date;
}

/** A point in the past: a Date or ISO string as is, a duration as "that long before `now`". */
export function pointInPast(value: unknown, now: Date = new Date()): Date | null {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? new Date(now.getTime() - value) : null;
  const date = parseDate(value);
  if (date) return date;
  const ms = typeof value === 'string' ? parseDuration(value) : null;
  return ms === null ? null : new Date(now.getTime() - ms);
}
