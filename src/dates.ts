// The one date parser of the library: since/until of find and stats, prune's olderThan, the
// dashboard's parameters, the CLI's flags and the dates inside cursors. ISO 8601 only, and only
// what it can read exactly: anything else is refused, never guessed at.
import { checkedSchema, ok, problem, unreadable, type Checked } from './checked.ts';

/** The earliest and latest instants accepted (inclusive). */
export const DATE_MIN = new Date('1970-01-01T00:00:00.000Z');
export const DATE_MAX = new Date('9999-12-31T23:59:59.999Z');

export const DATE_FORMAT = "an ISO 8601 date (2026-11-30) or date-time with a zone (2026-11-30T12:00Z, 2026-11-30T12:00:00.000+01:00)";

// date, then optionally T (or a space) time, seconds, up to 3 fractional digits, a zone.
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

export interface DateRules {
  /** A date-time without a zone: refused (ambiguous), or read as UTC (the dashboard's convention). */
  zoneless?: 'refuse' | 'utc';
}

/** A Date from a valid Date in range or an ISO 8601 string; the problem otherwise. */
export function checkDate(value: unknown, rules: DateRules = {}): Checked<Date> {
  if (value instanceof Date) return inRange(value);
  if (typeof value !== 'string') return unreadable(`expected a Date or ${DATE_FORMAT}`);
  const m = ISO.exec(value);
  if (!m) return unreadable(`expected ${DATE_FORMAT}`);
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const [year, month, day] = [Number(y), Number(mo), Number(d)];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) {
    return problem(`${y}-${mo}-${d} is not a day of the calendar`);
  }
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59)) {
    return problem(`${h}:${mi}${s === undefined ? '' : `:${s}`} is not a time of day (00:00 to 23:59:59)`);
  }
  if (h !== undefined && zone === undefined && rules.zoneless !== 'utc') {
    return problem('a date-time needs its zone: add Z for UTC or an offset such as +01:00');
  }
  const offset = zone === undefined || zone === 'Z' ? 0 : offsetMinutes(zone);
  if (offset === null) return problem(`${zone} is not a zone offset (-23:59 to +23:59)`);
  const ms = Date.UTC(year, month - 1, day, Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0), Number((frac ?? '0').padEnd(3, '0')));
  // Date.UTC reads years 0–99 as 1900–1999; such years are out of range either way.
  return year < 100 ? outOfRange() : inRange(new Date(ms - offset * 60_000));
}

export const dateSchema = checkedSchema((v) => checkDate(v));

function inRange(date: Date): Checked<Date> {
  if (Number.isNaN(date.getTime())) return problem(`is an Invalid Date; expected a valid Date or ${DATE_FORMAT}`);
  return date < DATE_MIN || date > DATE_MAX ? outOfRange() : ok(date);
}

const outOfRange = () => problem(`must be from ${DATE_MIN.toISOString()} to ${DATE_MAX.toISOString()}`);

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(2000 + (year % 400), month, 0)).getUTCDate();
}

function offsetMinutes(zone: string): number | null {
  const digits = zone.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2) || '0');
  if (hours > 23 || minutes > 59) return null;
  return (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
}
