import type { JobLogRow, JobState, RecordedError } from './types.ts';

type RawRow = Record<string, unknown>;

const date = (v: unknown): Date | null => (v == null ? null : v instanceof Date ? v : new Date(String(v)));
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

/** A `job_logs` row as read by the statements in sql.ts, in camelCase. */
export function toJobLogRow(raw: RawRow): JobLogRow {
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
    error: (json(raw.error) as RecordedError | null) ?? null,
    errors: (json(raw.errors) as JobLogRow['errors']) ?? [],
    createdAt: date(raw.created_at)!,
    updatedAt: date(raw.updated_at)!,
  };
}

const STACK_LINES = 12;

/** What is kept of a thrown value: name, message, code, and the top of the stack. */
export function recordError(error: unknown): RecordedError {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(error.stack ? { stack: error.stack.split('\n').slice(0, STACK_LINES).join('\n') } : {}),
  };
}
