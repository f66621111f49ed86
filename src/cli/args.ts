// Flags: node:util parseArgs, with its errors turned into one line that names the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { checkDuration, checkPointInPast } from '../duration.ts';

/** A wrong command, flag or value: exit code 2, a one-line message, no stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every command takes. */
export const COMMON: Options = {
  'database-url': { type: 'string' },
  'log-table': { type: 'string' },
  json: { type: 'boolean' },
  table: { type: 'boolean' },
  utc: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = `common flags:
  --database-url URL   the database (default: $DATABASE_URL)
  --log-table [S.]T    the log's table, when the app named it (default: $JOBLOG_TABLE, else job_logs)
  --json               JSON output (the default when stdout is not a terminal)
  --table              a table even when stdout is not a terminal
  --utc                dates in UTC (default: local time)
  -h, --help           this help`;

export interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** parseArgs in strict mode; a bad flag becomes a UsageError naming it. */
export function parseFlags(command: string, argv: string[], options: Options, positionals = 0): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: positionals > 0, strict: true }) as Parsed;
  } catch (error) {
    throw new UsageError(`${command}: ${describeParseError(error as Error & { code?: string })}`);
  }
  if (parsed.positionals.length > positionals) {
    throw new UsageError(`${command}: unexpected argument '${parsed.positionals[positionals]}'`);
  }
  return parsed;
}

function describeParseError(error: Error & { code?: string }): string {
  const flag = /'(-[^' ]+)/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag ?? error.message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(error.message)
        ? `${flag ?? 'a flag'} needs a value`
        : `${flag ?? 'a flag'} takes no value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(error.message)?.[1] ?? ''}`.trim();
    default:
      return error.message.split('\n')[0]!;
  }
}

export const str = (v: Parsed['values'][string]): string | undefined => (typeof v === 'string' ? v : undefined);

/** A repeatable, comma-separable flag: `--state failed,dead --state skipped`. */
export function list(v: Parsed['values'][string]): string[] | undefined {
  if (v === undefined) return undefined;
  const items = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
  return items;
}

export function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--${flag}: expected a positive integer, got '${v}'`);
  }
  return n;
}

/** `--since 24h` (that long ago), or an ISO date. */
export function pastPoint(flag: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  return pointOrThrow(flag, v, 'a duration such as 24h, 7d, 90m, or an ISO date such as 2026-11-30T12:00Z');
}

/** A duration flag (`--older-than 30d`) or an ISO date. */
export function durationOrDate(flag: string, v: string): Date | number {
  const ms = checkDuration(v);
  if (ms.ok) return ms.value;
  // Not a duration: a date, or the reason it is neither.
  return pointOrThrow(flag, v, 'a duration such as 30d, 12h, 90m, or an ISO date such as 2026-11-30');
}

function pointOrThrow(flag: string, v: string, forms: string): Date {
  const point = checkPointInPast(v);
  if (point.ok) return point.value;
  throw new UsageError(`--${flag}: ${point.unreadable ? `expected ${forms}` : point.problem}, got ${quote(v)}`);
}

/** A flag's value quoted for a one-line message: control characters escaped, long ones cut. */
function quote(v: string): string {
  const cut = v.length > 80 ? `${v.slice(0, 80)}…` : v;
  return JSON.stringify(cut).replace(/^"|"$/g, "'");
}
