import type { JobResult, JobWithMetadata } from 'pg-boss';
import { InvalidPayloadError, SectionBusyError, StaleAttemptError } from './errors.ts';
import { recordError } from './rows.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';
import type { JobIdentity, LogStore } from './store.ts';
import type { BusyPolicy, GroupOf, JobContext, TrackedHandler, UserIdOf } from './types.ts';

/** The validated options a tracked worker runs with. */
export interface TrackerConfig<T> {
  queue: string;
  type: string;
  group?: GroupOf<T>;
  userId?: UserIdOf<T>;
  schema?: StandardSchemaV1<unknown, T>;
  onBusy: BusyPolicy;
  retryable: boolean;
}

/** Something the caller should know but that did not stop the job (a fenced write, a lost write). */
export interface JobLogWarning {
  code: 'STALE_ATTEMPT' | 'LOG_WRITE_FAILED';
  message: string;
  jid: string;
  attempt: number;
  cause?: unknown;
}

export type WarningSink = (warning: JobLogWarning) => void;

interface Attempt {
  attempt: number;
  maxAttempts: number;
  isLast: boolean;
  /** retryable: false, or a queue with retryLimit 0. */
  nonRetryable: boolean;
  /** How a failure is reported to pg-boss: `deadletter` cuts short the retries pg-boss has left. */
  failStatus: 'failed' | 'deadletter';
}

/** pg-boss counts retries from 0; the last attempt is the one where retryCount === retryLimit. */
export function attemptOf(job: JobWithMetadata<unknown>, retryable: boolean): Attempt {
  const retryLimit = job.retryLimit ?? 0;
  const nonRetryable = !retryable || retryLimit === 0;
  return {
    attempt: job.retryCount + 1,
    maxAttempts: nonRetryable ? 1 : retryLimit + 1,
    isLast: nonRetryable || job.retryCount >= retryLimit,
    nonRetryable,
    failStatus: nonRetryable && job.retryCount < retryLimit ? 'deadletter' : 'failed',
  };
}

/** Runs the jobs of one pg-boss batch, one at a time; one job's failure never fails the others. */
export function createBatchHandler<T>(
  store: LogStore,
  config: TrackerConfig<T>,
  handler: TrackedHandler<T>,
  warn: WarningSink,
): (jobs: JobWithMetadata<T>[]) => Promise<JobResult[]> {
  return async (jobs) => {
    const results: JobResult[] = [];
    for (const job of jobs) {
      try {
        results.push(await runJob(store, config, handler, warn, job));
      } catch (cause) {
        // The log could not be read or written before the handler ran: the work was not done,
        // so pg-boss retries the job by its normal rules.
        warn({
          code: 'LOG_WRITE_FAILED',
          message: `could not claim the log row of job ${job.id}: ${String(cause)}`,
          jid: job.id,
          attempt: job.retryCount + 1,
          cause,
        });
        results.push({ id: job.id, status: 'failed', output: recordError(cause) });
      }
    }
    return results;
  };
}

async function runJob<T>(
  store: LogStore,
  config: TrackerConfig<T>,
  handler: TrackedHandler<T>,
  warn: WarningSink,
  job: JobWithMetadata<T>,
): Promise<JobResult> {
  const attempt = attemptOf(job as JobWithMetadata<unknown>, config.retryable);
  const base: JobIdentity = {
    jid: job.id,
    queue: config.queue,
    type: config.type,
    userId: null,
    group: null,
    attempt: attempt.attempt,
    maxAttempts: attempt.maxAttempts,
    queuedAt: job.createdOn ?? null,
  };

  const prepared = await prepare(config, job);
  if ('invalid' in prepared) {
    const error = prepared.invalid;
    await store.recordSettled({ ...base, userId: prepared.userId }, 'failed', { error });
    return { id: job.id, status: 'deadletter', output: recordError(error) };
  }

  const identity: JobIdentity = { ...base, userId: prepared.userId, group: prepared.group };
  const claim = await store.claim(identity);
  switch (claim.outcome) {
    case 'busy':
      return onBusy(store, config, identity, attempt, claim.holderJid);
    case 'stale': {
      const error = new StaleAttemptError(job.id, attempt.attempt);
      warn({ code: 'STALE_ATTEMPT', message: error.message, jid: job.id, attempt: attempt.attempt });
      return { id: job.id, status: 'failed', output: recordError(error) };
    }
    case 'settled':
      // The log already tells how this job ended; running it again would do the work twice.
      return {
        id: job.id,
        status: claim.state === 'finished' || claim.state === 'skipped' ? 'completed' : 'deadletter',
        output: { joblog: `already ${claim.state}` },
      };
  }

  const ctx = contextFor(store, identity, attempt, { ...job, data: prepared.data });
  try {
    const output = await handler({ ...job, data: prepared.data }, ctx);
    await settle(warn, identity, () => store.finish(job.id, attempt.attempt));
    return { id: job.id, status: 'completed', output: output ?? undefined };
  } catch (error) {
    const next = !attempt.isLast ? 'started' : attempt.nonRetryable ? 'failed' : 'dead';
    await settle(warn, identity, () => store.recordFailure(job.id, attempt.attempt, error, next));
    return { id: job.id, status: attempt.failStatus, output: recordError(error) };
  }
}

/**
 * Write the row's final state. A write that fails or is fenced off is reported, not thrown:
 * pg-boss must still learn the handler's real outcome (a job that did its work must not run
 * again), and the reaper brings the row in line with pg-boss later.
 */
async function settle(warn: WarningSink, job: JobIdentity, write: () => Promise<boolean>): Promise<void> {
  try {
    if (!(await write())) {
      const error = new StaleAttemptError(job.jid, job.attempt);
      warn({ code: 'STALE_ATTEMPT', message: `${error.message}; its result was not written`, jid: job.jid, attempt: job.attempt });
    }
  } catch (cause) {
    warn({
      code: 'LOG_WRITE_FAILED',
      message: `could not write the log row of job ${job.jid} attempt ${job.attempt}: ${String(cause)}`,
      jid: job.jid,
      attempt: job.attempt,
      cause,
    });
  }
}

async function onBusy(
  store: LogStore,
  config: { onBusy: BusyPolicy },
  job: JobIdentity,
  attempt: Attempt,
  holderJid: string | null,
): Promise<JobResult> {
  const error = new SectionBusyError(job.userId!, job.group!, holderJid);
  if (config.onBusy === 'skip') {
    await store.recordSettled(job, 'skipped', { error, holderJid });
    return { id: job.jid, status: 'completed', output: { skipped: error.message, holderJid } };
  }
  // 'throw': pg-boss retries the job; on its last attempt the row records why it died.
  if (attempt.isLast) await store.recordSettled(job, attempt.nonRetryable ? 'failed' : 'dead', { error, holderJid });
  return { id: job.jid, status: attempt.failStatus, output: recordError(error) };
}

type Prepared<T> =
  | { data: T; userId: string | null; group: string | null }
  | { invalid: InvalidPayloadError; userId: string | null };

/** Validate the payload and read the section's user and group from it. */
async function prepare<T>(config: TrackerConfig<T>, job: JobWithMetadata<T>): Promise<Prepared<T>> {
  let data = job.data;
  if (config.schema) {
    const result = await config.schema['~standard'].validate(job.data);
    if (result.issues) {
      const issues = result.issues.map((i) => ({ path: pathOf(i.path), message: i.message }));
      return { invalid: new InvalidPayloadError(job.id, issues), userId: userIdOfInvalid(config, job) };
    }
    data = result.value;
  }
  const parsed = { ...job, data };
  let userId: string | null;
  try {
    userId = normaliseUserId(config.userId?.(parsed));
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { invalid: new InvalidPayloadError(job.id, [{ path: 'userId', message }], { cause }), userId: null };
  }
  let group: string | null;
  try {
    group = typeof config.group === 'function' ? (config.group(parsed) ?? null) : (config.group ?? null);
    if (group !== null && typeof group !== 'string') throw new TypeError(`group must be a string, got ${typeof group}`);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { invalid: new InvalidPayloadError(job.id, [{ path: 'group', message }], { cause }), userId };
  }
  return { data, userId, group };
}

/** Whose job had the bad payload, when the raw payload still tells; the row is written either way. */
function userIdOfInvalid<T>(config: TrackerConfig<T>, job: JobWithMetadata<T>): string | null {
  try {
    return normaliseUserId(config.userId?.(job));
  } catch {
    return null;
  }
}

/** A user id is stored as text; numbers and bigints (integer ids) are written in decimal. */
export function normaliseUserId(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new TypeError(
    `user id must be a non-empty string or an integer, got ${typeof value === 'string' ? 'an empty string' : JSON.stringify(value) ?? typeof value}`,
  );
}

function pathOf(path: StandardSchemaV1.Issue['path']): string {
  return (path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
}

function contextFor(store: LogStore, job: JobIdentity, attempt: Attempt, pgJob: JobWithMetadata<unknown>): JobContext {
  const ownsSection = () => store.owns(job.jid, job.attempt);
  return {
    attempt: attempt.attempt,
    maxAttempts: attempt.maxAttempts,
    isLastAttempt: attempt.isLast,
    signal: pgJob.signal,
    section: job.userId !== null && job.group !== null ? { userId: job.userId, group: job.group } : null,
    ownsSection,
    async assertOwnsSection() {
      if (!(await ownsSection())) throw new StaleAttemptError(job.jid, job.attempt);
    },
  };
}
