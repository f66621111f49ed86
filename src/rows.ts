import { MESSAGE_CHARS, NAME_CHARS, STACK_CHARS, STACK_LINES, storableText } from './sanitise.ts';
import type { ErrorSummary, JobLogListRow, JobLogRow, JobState, RecordedError } from './types.ts';

type RawRow = Record<string, unknown>;

const date = (v: unknown): Date | null => (v == null ? null : v instanceof Date ? v : new Date(String(v)));
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

/** A `job_logs` row as read by the statements in sql.ts, in camelCase. */
export function toJobLogRow(raw: RawRow): JobLogRow {
  return {
    ...toRowColumns(raw),
    error: (json(raw.error) as RecordedError | null) ?? null,
    errors: (json(raw.errors) as JobLogRow['errors']) ?? [],
  };
}

/** A row read with `LIST_COLUMNS`: the last error summed up, no error documents. */
export function toJobLogListRow(raw: RawRow): JobLogListRow {
  let error: ErrorSummary | null = null;
  if (raw.error_message != null || raw.error_name != null) {
    error = {
      name: String(raw.error_name ?? ''),
      ...(raw.error_code == null ? {} : { code: String(raw.error_code) }),
      message: String(raw.error_message ?? ''),
      truncated: raw.error_truncated === true,
    };
  }
  return { ...toRowColumns(raw), error };
}

function toRowColumns(raw: RawRow): Omit<JobLogRow, 'error' | 'errors'> {
  return {
    id: BigInt(raw.id as bigint | number | string),
    jid: String(raw.jid),
    queue: String(raw.queue),
    jobType: String(raw.job_type),
    state: raw.state as JobState,
    userId: (raw.user_id as string | null) ?? null,
    group: (raw.group as string | null) ?? null,
    attempt: Number(raw.attempt),
    maxAttempts: Number(raw.max_attempts),
    holderJid: (raw.holder_jid as string | null) ?? null,
    queuedAt: date(raw.queued_at),
    startedAt: date(raw.started_at)!,
    finishedAt: date(raw.finished_at),
    durationMs: raw.duration_ms == null ? null : Number(raw.duration_ms),
    waitedMs: raw.waited_ms == null ? null : Number(raw.waited_ms),
    leaseUntil: date(raw.lease_until),
    createdAt: date(raw.created_at)!,
    updatedAt: date(raw.updated_at)!,
  };
}

/**
 * JSON with a bigint (an id or a field's value) as its decimal text. Without a replacer first:
 * JSON.stringify throws on a bigint, and a replacer function costs every value a call (a batch
 * claim's or write's input: 6 µs of CPU per job at batch 50).
 */
export const toJson = (value: unknown): string => {
  try {
    return JSON.stringify(value);
  } catch {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
  }
};

/**
 * What is kept of a thrown value: name, message, code and the top of the stack, each storable and
 * bounded (see sanitise.ts). Total: whatever was thrown (null, a Symbol, `Object.create(null)`, an
 * error whose getters throw, a revoked Proxy), it returns a record and never throws.
 */
export function recordError(error: unknown): RecordedError {
  try {
    return describe(error);
  } catch {
    return { name: 'NonError', message: UNDESCRIBABLE };
  }
}

const UNDESCRIBABLE = '(a thrown value that could not be read)';

function describe(error: unknown): RecordedError {
  const isError = attempt(() => error instanceof Error, false);
  const message = read(error, 'message');
  if (!isError && typeof message !== 'string') {
    return { name: 'NonError', message: storableText(describeValue(error), MESSAGE_CHARS) };
  }
  const rawName = read(error, 'name');
  const name = typeof rawName === 'string' && rawName !== '' ? rawName : isError ? 'Error' : 'NonError';
  const text = typeof message === 'string' ? message : message === undefined ? '' : describeValue(message);
  const code = read(error, 'code');
  const stack = read(error, 'stack');
  const frames = typeof stack === 'string' ? framesOf(stack, name, text) : '';
  return {
    name: storableText(name, NAME_CHARS),
    message: storableText(text, MESSAGE_CHARS),
    ...(typeof code === 'string' ? { code: storableText(code, NAME_CHARS) } : {}),
    ...(frames ? { stack: storableText(frames, STACK_CHARS) } : {}),
  };
}

/** A property of an object, or undefined when there is none or reading it throws. */
function read(value: unknown, key: string): unknown {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  return attempt(() => (value as Record<string, unknown>)[key], undefined);
}

function attempt<T>(fn: () => T, otherwise: T): T {
  try {
    return fn();
  } catch {
    return otherwise;
  }
}

/** A value that is not an error, as text: String() where it says something, else its JSON. */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'symbol') return attempt(() => value.toString(), 'Symbol()');
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return String(value);
  const text = attempt<string | undefined>(() => String(value), undefined);
  if (text !== undefined && text !== '[object Object]') return text;
  return attempt(() => JSON.stringify(value), undefined) ?? text ?? attempt(() => Object.prototype.toString.call(value), UNDESCRIBABLE);
}

/**
 * The first STACK_LINES frames of a stack. V8's first line(s) repeat `name: message`, already
 * stored beside it, so they are dropped (also when the name changed after the stack was made).
 */
function framesOf(stack: string, name: string, message: string): string {
  let start = headerLength(stack, name, message);
  if (start > 0 && start < stack.length) start += 1; // the newline after it
  let end = start;
  for (let lines = 0; lines < STACK_LINES && end < stack.length; lines++) {
    const next = stack.indexOf('\n', end);
    end = next < 0 ? stack.length : next + 1;
  }
  return stack.slice(start, end).replace(/\n$/, '');
}

/** How long the stack's `name: message` header is; 0 when it has none. */
function headerLength(stack: string, name: string, message: string): number {
  if (!message) return stack.startsWith(name) && (stack.length === name.length || stack[name.length] === '\n') ? name.length : 0;
  const colon = stack.startsWith(`${name}: `) ? name.length : stack.indexOf(': ');
  if (colon < 0 || colon > NAME_CHARS || stack.lastIndexOf('\n', colon) >= 0) return 0;
  const from = colon + 2;
  const end = from + message.length;
  if (end !== stack.length && stack[end] !== '\n') return 0;
  // Both ends of the message, not all of it: comparing a 1 MB message in full costs ~8 ms.
  const n = Math.min(message.length, 200);
  return stack.startsWith(message.slice(0, n), from) && stack.startsWith(message.slice(message.length - n), end - n) ? end : 0;
}

/** The `error.name` of a history entry that records an action (retry, cancel, release), not a failure. */
export const ACTION_ENTRY_NAME = 'Action';

/** Is this `errors` entry an operator's action rather than an attempt's failure? */
export function isActionEntry(entry: { error: { name: string } }): boolean {
  return entry.error.name === ACTION_ENTRY_NAME;
}
