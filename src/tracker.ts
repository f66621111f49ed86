import type { JobResult, JobWithMetadata } from 'pg-boss';
import { busyHistoryOf, busyOutput } from './busy-history.ts';
import { isConnectionError, isValueError, sqlStateOf } from './db-errors.ts';
import { AttemptAbortedError, InvalidPayloadError, SectionBusyError, StaleAttemptError } from './errors.ts';
import { recordError, toJson } from './rows.ts';
import { normaliseGroup, userIdFor, type UserIdType } from './ids.ts';
import { MESSAGE_CHARS, storableText } from './sanitise.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';
import type { ClaimResult, JobIdentity, LogStore, Running, Settlement, SettleResult } from './store.ts';
import type { BusyPolicy, GroupOf, JobContext, TrackedHandler, UserIdOf } from './types.ts';
import type { AttemptTracer, AttemptOutcome } from './tracing.ts';
import { waitMarkOf, type BusyJob, type BusyWaits } from './waiting.ts';

/** The validated options a tracked worker runs with. */
export interface TrackerConfig<T> {
  queue: string;
  type: string;
  group?: GroupOf<T>;
  userId?: UserIdOf<T>;
  /** The type of the table's user_id column: a user id of another shape is an invalid payload. */
  userIdType: UserIdType;
  /** The app's own columns, each filled from the job (already checked against the table). */
  fields?: Record<string, (job: JobWithMetadata<T>) => unknown>;
  schema?: StandardSchemaV1<unknown, T>;
  onBusy: BusyPolicy;
  retryable: boolean;
  /** Puts `onBusy: { wait }` jobs back into pg-boss. */
  waits: BusyWaits;
  /** Told each time a job finds its section held (the `busy` event). */
  busy?: (event: BusyEvent) => void;
  /** One span per attempt whose handler runs (tracing.ts); undefined without @opentelemetry/api. */
  tracer?: AttemptTracer;
}

/** A job found its section held by another job. */
export interface BusyEvent {
  jid: string;
  queue: string;
  type: string;
  userId: string;
  group: string;
  attempt: number;
  /** The job that holds the section, when it could be read. */
  holderJid: string | null;
  policy: 'skip' | 'throw' | 'wait';
}

/** Something the caller should know but that did not stop the job (a fenced write, a lost write). */
export interface JobLogWarning {
  /**
   * `REAP_FAILED` / `PRUNE_FAILED` / `SUMMARISE_FAILED`: a pass of the interval failed (it runs again next time).
   * `LISTENER_FAILED`: a listener of `settled`, `busy`, `reaped` or `pruned` threw.
   * `METRICS_READ_FAILED`: a scrape of `metrics()` could not read the log (its gauges read `log_up 0`).
   */
  code: 'STALE_ATTEMPT' | 'LOG_WRITE_FAILED' | 'REAP_FAILED' | 'PRUNE_FAILED' | 'SUMMARISE_FAILED' | 'LISTENER_FAILED' | 'METRICS_READ_FAILED';
  message: string;
  /** The job's id and attempt, for the job warnings. */
  jid?: string;
  attempt?: number;
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

/**
 * Runs the jobs of one pg-boss batch. The rows of its jobs are claimed in one statement, the
 * handler runs once per job, one job after the other, and every row is settled in one statement
 * before pg-boss hears the results (so a job pg-boss completes already has its final row). A first
 * attempt without a section (and without `fields`) has nothing to claim: its row is written only
 * in the settling statement, after its handler (see `Admitted.unwritten`). One job's failure never
 * fails the others. Claims and settles of concurrent workers share statements too (see
 * LogStore.claimBatch): the log costs about two statements per batch of workers, not per job, and
 * one when the jobs have no section.
 */
export function createBatchHandler<T>(
  store: LogStore,
  config: TrackerConfig<T>,
  handler: TrackedHandler<T>,
  warn: WarningSink,
): (jobs: JobWithMetadata<T>[]) => Promise<JobResult[]> {
  return async (jobs) => {
    const results = new Map<string, JobResult>();
    const admitted: Admitted<T>[] = [];
    for (const job of jobs) {
      try {
        const entry = await admit(store, config, job);
        if ('result' in entry) results.set(job.id, entry.result);
        else admitted.push(entry);
      } catch (cause) {
        results.set(job.id, claimFailed(warn, job, cause, 'record-invalid-payload'));
      }
    }
    const busy: BusyJob[] = [];
    const runnable = await claimAll(store, config, warn, admitted, results, busy);
    await afterClaim(store, warn, runnable);
    const settlements = await runAll(store, handler, warn, runnable, results, config.tracer);
    await settleAll(store, warn, settlements);
    // Last, just before pg-boss hears the results: see waiting.ts.
    if (busy.length > 0) await putBack(store, config, warn, busy, results);
    return jobs.map((job) => results.get(job.id) ?? { id: job.id, status: 'failed', output: { joblog: 'no outcome was recorded for this job' } });
  };
}

/**
 * A batch's rows are checked again before a handler starts once this long has passed since they
 * were claimed (or last checked): only a batch that has run that long can have lost a row to
 * pg-boss's expiry, and the check costs one statement for the rest of the batch.
 */
const RECHECK_AFTER_MS = 1000;

/**
 * A job without a section whose handler is still running this long after it started gets its
 * `started` row then (one statement), so `inProgress()` and `find({ states: ['started'] })` show
 * what runs long; a shorter run is seen only in pg-boss (`active`) until its row is written.
 */
export const RUNNING_ROW_AFTER_MS = RECHECK_AFTER_MS;

/**
 * Run the claimed jobs' handlers one after the other. A handler never starts when its job's
 * signal has aborted (pg-boss gave up on the attempt) or, once the batch has run for a while, when
 * its row is no longer this attempt's (a newer attempt or the reaper took it): the rest of a
 * batch whose first handler outlived its expiry must not run beside the jobs that replaced them.
 * The outcomes are settled together after the batch, except in a batch that runs long: once it has
 * run RECHECK_AFTER_MS, the outcomes so far are settled while the next handler runs, so a mate that
 * finished is `finished` in the log before pg-boss's expiry can hand it to another worker.
 * Resolves to the settlements still to write.
 */
async function runAll<T>(
  store: LogStore,
  handler: TrackedHandler<T>,
  warn: WarningSink,
  runnable: Admitted<T>[],
  results: Map<string, JobResult>,
  tracer: AttemptTracer | undefined,
): Promise<Settlement[]> {
  const pending: Settlement[] = [];
  const flushes: Promise<void>[] = [];
  const clock = batchClock(
    () => { if (pending.length > 0) flushes.push(settleAll(store, warn, pending.splice(0))); },
    (running) => flushes.push(recordRunning(store, warn, running)),
  );
  let checkedAt = performance.now();
  let owned: Set<string> | null = null; // null: every row, as the claim left them
  for (const [i, entry] of runnable.entries()) {
    if (performance.now() - checkedAt > RECHECK_AFTER_MS) {
      owned = await stillOwned(store, warn, runnable.slice(i));
      checkedAt = performance.now();
    }
    if (owned && !owned.has(entry.job.id)) {
      results.set(entry.job.id, notStarted(warn, entry, 'its row is no longer this attempt\'s'));
      continue;
    }
    if (entry.job.signal?.aborted) {
      // The row is still this attempt's: say why it ended, as a failure of the attempt.
      const error = new AttemptAbortedError(entry.job.id, entry.attempt.attempt);
      results.set(entry.job.id, { id: entry.job.id, status: entry.attempt.failStatus, output: recordError(error) });
      const now = performance.now();
      pending.push({ ...runOf(entry, now, now), jid: entry.job.id, attempt: entry.attempt.attempt, state: nextState(entry.attempt), error });
      continue;
    }
    const { result, settlement } = await runClaimed(store, handler, entry, clock, tracer);
    results.set(entry.job.id, result);
    pending.push(settlement);
  }
  clock.stop();
  await Promise.all(flushes);
  return pending;
}

/** What a batch's handlers tell its clock. */
interface BatchClock {
  /** A handler starts; `running` for a job whose row is written after it. */
  starting(running: Running | null): void;
  /** That handler has returned or thrown. */
  ended(): void;
  stop(): void;
}

/**
 * The timers of one batch. Once it has run RECHECK_AFTER_MS, `flush` settles the outcomes so far
 * (then again as each next handler starts), and a job without a section whose handler has run
 * RUNNING_ROW_AFTER_MS gets its `started` row (`record`). A batch that ends sooner costs one timer,
 * not one per job (a timer per job was 4 µs of CPU per job at batch 50).
 */
function batchClock(flush: () => void, record: (running: Running) => void): BatchClock {
  let long = false;
  let current: Running | null = null;
  let watch: ReturnType<typeof setTimeout> | null = null;
  const watchRunning = (running: Running) => {
    const left = RUNNING_ROW_AFTER_MS - (performance.now() - running.startedAt);
    watch = setTimeout(() => {
      watch = null;
      if (current === running) record(running);
    }, Math.max(0, left));
  };
  const timer = setTimeout(() => {
    long = true;
    flush();
    if (current) watchRunning(current);
  }, RECHECK_AFTER_MS);
  return {
    starting(running) {
      current = running;
      if (!long) return;
      flush();
      if (running) watchRunning(running);
    },
    ended() {
      current = null;
      if (watch) clearTimeout(watch);
      watch = null;
    },
    stop: () => clearTimeout(timer),
  };
}

/** The jids of `entries` whose rows are still theirs; none when that cannot be read (then none may start). */
async function stillOwned<T>(store: LogStore, warn: WarningSink, entries: Admitted<T>[]): Promise<Set<string>> {
  try {
    return await store.ownsMany(entries.map((e) => ({ jid: e.job.id, attempt: e.attempt.attempt, unwritten: e.unwritten })));
  } catch (cause) {
    for (const e of entries) logWriteFailed(warn, 'check-row', e.job.id, e.attempt.attempt, cause);
    return new Set();
  }
}

/** A job whose handler was not started: pg-boss retries it by its normal rules (its fence ignores a stale attempt's result). */
function notStarted<T>(warn: WarningSink, { job, attempt }: Admitted<T>, why: string): JobResult {
  const error = new StaleAttemptError(job.id, attempt.attempt);
  warn({ code: 'STALE_ATTEMPT', message: `${error.message}; its handler was not started (${why})`, jid: job.id, attempt: attempt.attempt });
  return { id: job.id, status: 'failed', output: recordError(error) };
}

const outcomeOf = (state: Settlement['state']): AttemptOutcome => (state === 'started' ? 'retry' : (state as AttemptOutcome));

/** The row's state after a failed attempt: kept `started` while a retry is due. */
function nextState(attempt: Attempt): Settlement['state'] {
  return !attempt.isLast ? 'started' : attempt.nonRetryable ? 'failed' : 'dead';
}

/** A job whose payload passed, ready to be claimed. */
interface Admitted<T> {
  job: JobWithMetadata<T>;
  identity: JobIdentity;
  attempt: Attempt;
  data: T;
  /**
   * A first attempt without a section and without `fields`: not claimed, its row is written after
   * its handler (or once it runs RUNNING_ROW_AFTER_MS). Retries are claimed as before: the claim
   * re-enters the row of a failed attempt, and refuses to run a job whose row is settled already
   * or a newer attempt's. A job with `fields` is claimed too: a value its column refuses (the app's
   * foreign key, say) must end the job `failed` before it runs, and only a write can tell.
   */
  unwritten: boolean;
}

/** A user and a group: the job takes the section (user, group). */
const takesSection = (identity: JobIdentity) => identity.userId !== null && identity.group !== null;

/** The `run` of a settlement for a job whose row is written after its handler. */
function runOf<T>(entry: Admitted<T>, startedAt: number, endedAt: number): Pick<Settlement, 'run'> {
  return entry.unwritten ? { run: { identity: entry.identity, startedAt, endedAt } } : {};
}

/** The log could not be read or written before the handler ran: the work was not done, so pg-boss retries the job by its normal rules. */
function claimFailed(warn: WarningSink, job: JobWithMetadata<unknown>, cause: unknown, operation: string, identity?: JobIdentity): JobResult {
  logWriteFailed(warn, operation, job.id, job.retryCount + 1, cause);
  // What the reaper needs to write the row if this was the last attempt (see reconcile.ts).
  const joblog = identity && { type: identity.type, userId: identity.userId, group: identity.group };
  return { id: job.id, status: 'failed', output: { ...recordError(cause), ...(joblog ? { joblog } : {}) } };
}

/** One short line for a JSON logger, naming the write that failed; the database's own text stays in `cause`. */
export function logWriteFailed(warn: WarningSink, operation: string, jid: string, attempt: number, cause: unknown): void {
  warn({ code: 'LOG_WRITE_FAILED', message: `log write failed (${operation}) for job ${jid} attempt ${attempt}`, jid, attempt, cause });
}

/** Check the payload; a bad one is settled `failed` at once and dead-lettered. */
async function admit<T>(store: LogStore, config: TrackerConfig<T>, job: JobWithMetadata<T>): Promise<Admitted<T> | { result: JobResult }> {
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
    // A static group is the worker's, not the payload's: the row names it (find({ group }) lists the job).
    const group = typeof config.group === 'string' ? config.group : null;
    await store.recordSettled({ ...base, userId: prepared.userId, group }, 'failed', { error });
    return { result: { id: job.id, status: 'deadletter', output: recordError(error) } };
  }
  const identity = { ...base, userId: prepared.userId, group: prepared.group, ...(prepared.fields ? { fields: prepared.fields } : {}) };
  const unwritten = !takesSection(identity) && !identity.fields && attempt.attempt === 1 && waitMarkOf(job as JobWithMetadata<unknown>) === null;
  return { job, identity, attempt, data: prepared.data, unwritten };
}

/** Claim every admitted job's row in one statement; resolves to the jobs that may run. */
async function claimAll<T>(
  store: LogStore,
  config: TrackerConfig<T>,
  warn: WarningSink,
  admitted: Admitted<T>[],
  results: Map<string, JobResult>,
  busy: BusyJob[],
): Promise<Admitted<T>[]> {
  const toClaim = admitted.filter((entry) => !entry.unwritten);
  let claims: ClaimResult[];
  try {
    claims = await store.claimBatch(toClaim.map((entry) => entry.identity));
  } catch (error) {
    claims = toClaim.map(() => ({ outcome: 'error', error }));
  }
  const runnable: Admitted<T>[] = [];
  let next = 0;
  for (const entry of admitted) {
    if (entry.unwritten) {
      runnable.push(entry);
      continue;
    }
    const claim = claims[next++]!;
    try {
      const result = await unclaimed(store, config, warn, entry, claim, busy);
      if (result) results.set(entry.job.id, result);
      else runnable.push(entry);
    } catch (cause) {
      const operation = claim.outcome === 'error' ? 'record-refused' : 'record-busy';
      results.set(entry.job.id, claimFailed(warn, entry.job, cause, operation, entry.identity));
    }
  }
  return runnable;
}

/**
 * The claim failed. A value the table refuses (a user id its foreign key or column type rejects,
 * say) is refused on every retry: the job ends `failed` without running, in a row that leaves the
 * refused values out (the error names them). Anything else (the connection, a lock timeout):
 * pg-boss retries the job, and a last attempt's row is written by the reaper from pg-boss's side.
 */
async function claimRefused(store: LogStore, warn: WarningSink, { job, identity }: Admitted<unknown>, cause: unknown): Promise<JobResult> {
  if (!isValueError(cause)) return claimFailed(warn, job, cause, 'claim', identity);
  // With fields, the refused value may be one of them (a foreign key of the app's, a type).
  const path = identity.fields ? 'userId, group, fields' : sqlStateOf(cause) === '23503' ? 'userId' : 'userId, group';
  const refused = recordError(cause);
  const values = [identity.userId, identity.group, ...(identity.fields ? [identity.fields] : [])];
  const error = new InvalidPayloadError(job.id, [{ path, message: `the log refused the job's ${path} ${toJson(values)}: ${refused.message}` }], { cause });
  await store.recordSettled({ ...identity, userId: null, group: null }, 'failed', { error });
  return { id: job.id, status: 'deadletter', output: recordError(error) };
}

/** What a job that did not get its row does instead of running; null when it got it. */
async function unclaimed<T>(
  store: LogStore,
  config: TrackerConfig<T>,
  warn: WarningSink,
  { job, identity, attempt }: Admitted<T>,
  claim: ClaimResult,
  busy: BusyJob[],
): Promise<JobResult | null> {
  if (claim.outcome === 'busy') {
    const policy = typeof config.onBusy === 'object' ? 'wait' : config.onBusy;
    config.busy?.({ jid: job.id, queue: identity.queue, type: identity.type, userId: identity.userId!, group: identity.group!, attempt: identity.attempt, holderJid: claim.holderJid, policy });
  }
  switch (claim.outcome) {
    case 'error':
      return claimRefused(store, warn, { job, identity, attempt } as Admitted<unknown>, claim.error);
    case 'busy':
      if (typeof config.onBusy === 'object') {
        busy.push({ job: job as JobWithMetadata<unknown>, identity, holderJid: claim.holderJid, policy: config.onBusy.wait });
        return { id: job.id, status: 'completed', output: { joblog: 'waiting for its section' } }; // replaced by putBack
      }
      return onBusy(store, config, job as JobWithMetadata<unknown>, identity, attempt, claim.holderJid);
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
  return null;
}

/**
 * Run the handler of a claimed job (or of one whose row is written after it); the row's settling
 * write is left to the batch. The batch's clock writes the `started` row of an `unwritten` job
 * still running after RUNNING_ROW_AFTER_MS.
 */
async function runClaimed<T>(
  store: LogStore,
  handler: TrackedHandler<T>,
  entry: Admitted<T>,
  clock: BatchClock,
  tracer: AttemptTracer | undefined,
): Promise<{ result: JobResult; settlement: Settlement }> {
  const { job, identity, attempt, data } = entry;
  const parsed = withData(job, data);
  const running: Running = { identity, startedAt: performance.now() };
  const ctx = contextFor(store, identity, attempt, parsed, entry.unwritten ? running : null);
  clock.starting(entry.unwritten ? running : null);
  let outcome: { result: JobResult; settlement: Settlement };
  try {
    const run = () => handler(parsed, ctx);
    const output = await (tracer ? tracer.run(identity, run, outcomeOf(nextState(attempt))) : run());
    outcome = {
      result: { id: job.id, status: 'completed', output: output ?? undefined },
      settlement: { jid: job.id, attempt: attempt.attempt, state: 'finished' },
    };
  } catch (error) {
    outcome = {
      result: { id: job.id, status: attempt.failStatus, output: recordError(error) },
      settlement: { jid: job.id, attempt: attempt.attempt, state: nextState(attempt), error },
    };
  } finally {
    clock.ended();
  }
  Object.assign(outcome.settlement, runOf(entry, running.startedAt, performance.now()));
  return outcome;
}

/** The `started` row of a job without a section that runs long; a failure only costs its visibility. */
async function recordRunning(store: LogStore, warn: WarningSink, running: Running): Promise<void> {
  try {
    await store.recordRunning([running]);
  } catch (cause) {
    logWriteFailed(warn, 'record-running', running.identity.jid, running.identity.attempt, cause);
  }
}

/** Waits between tries of a settle whose connection failed (a restart takes a few seconds). */
const SETTLE_RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

/**
 * Write the rows' final states. A write that failed on its connection is tried again (within a
 * few seconds) before pg-boss hears the results: if both were lost, finished work would run
 * again. A write that still fails or is fenced off is reported, not thrown: pg-boss must still
 * learn the handlers' real outcomes, and the reaper brings the row in line with pg-boss later
 * (a job without a section has no row yet: see lastResort).
 */
async function settleAll(store: LogStore, warn: WarningSink, settlements: Settlement[]): Promise<void> {
  let pending = settlements;
  const lost: { s: Settlement; error: unknown }[] = [];
  for (let tries = 0; pending.length > 0; tries++) {
    let written: SettleResult[];
    try {
      written = await store.settleBatch(pending);
    } catch (error) {
      written = pending.map(() => ({ error }));
    }
    const again: Settlement[] = [];
    for (const [i, s] of pending.entries()) {
      const w = written[i]!;
      if (w === true) continue;
      if (w === false) {
        await fencedOff(store, warn, s, tries > 0);
      } else if (isConnectionError(w.error) && tries < SETTLE_RETRY_DELAYS_MS.length) {
        again.push(s);
      } else if (s.run && isConnectionError(w.error)) {
        lost.push({ s, error: w.error });
      } else {
        logWriteFailed(warn, 'settle', s.jid, s.attempt, w.error);
      }
    }
    if (again.length > 0) await sleep(SETTLE_RETRY_DELAYS_MS[tries]!);
    pending = again;
  }
  if (lost.length > 0) await lastResort(store, warn, lost);
}

/**
 * A job without a section whose row could not be written on the log's connection has no row at
 * all (no reaper can settle what is not there): one more try through pg-boss's pool, which must
 * be up for pg-boss to complete the job. If it fails too, pg-boss most likely cannot complete the
 * job either, and its retry is claimed and writes the row.
 */
async function lastResort(store: LogStore, warn: WarningSink, lost: { s: Settlement; error: unknown }[]): Promise<void> {
  let written: boolean[] | null;
  let failure: unknown = null;
  try {
    written = await store.writeRunsLastResort(lost.map((l) => l.s));
  } catch (error) {
    written = null;
    failure = error;
  }
  for (const [i, { s, error }] of lost.entries()) {
    if (written?.[i] === true) continue;
    if (written?.[i] === false) {
      await fencedOff(store, warn, s, true);
    } else {
      logWriteFailed(warn, 'settle', s.jid, s.attempt, failure ?? error);
    }
  }
}

/**
 * A settle the attempt fence refused: a stale attempt's, reported; unless `retried` and the row
 * already says what `s` meant (an earlier try wrote it and its answer was lost).
 */
async function fencedOff(store: LogStore, warn: WarningSink, s: Settlement, retried: boolean): Promise<void> {
  if (retried && (await settledAsMeant(store, s))) return;
  const error = new StaleAttemptError(s.jid, s.attempt);
  warn({ code: 'STALE_ATTEMPT', message: `${error.message}; its result was not written`, jid: s.jid, attempt: s.attempt });
}

/** Does the row already say what `s` meant to write (by the same attempt)? */
async function settledAsMeant(store: LogStore, s: Settlement): Promise<boolean> {
  try {
    const row = await store.byJid(s.jid);
    return row !== null && row.attempt === s.attempt && row.state === s.state;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * What a claimed job's row should know before it runs, from the previous attempt's `output`
 * (pg-boss hands it to the retry): how long it waited for its section (`onBusy: { wait }`), the
 * attempts that found it busy (`onBusy: 'throw'`), or why the previous attempt ended if that
 * attempt could not say so itself (killed, timed out, connection lost).
 */
async function afterClaim<T>(store: LogStore, warn: WarningSink, runnable: Admitted<T>[]): Promise<void> {
  for (const { job, identity, attempt, unwritten } of runnable) {
    if (unwritten) continue; // a first attempt: no mark, no busy attempts, no attempt before it
    const mark = waitMarkOf(job as JobWithMetadata<unknown>);
    const busy = busyHistoryOf(job as JobWithMetadata<unknown>);
    const operation = mark ? 'record-waited' : busy.length > 0 ? 'record-busy-attempts' : 'record-lost-attempt';
    try {
      if (mark) await store.recordWaited(job.id, attempt.attempt, mark.since);
      else if (busy.length > 0) await store.recordBusyAttempts(job.id, attempt.attempt, busy);
      else if (attempt.attempt > 1 && job.output != null && job.startedOn) {
        // A job without a section writes its row after its handler: a lost attempt left none.
        const fetchedAt = takesSection(identity) ? job.startedOn : null;
        await store.recordLostAttempt(job.id, attempt.attempt, lostAttemptError(attempt.attempt - 1, job.output), fetchedAt);
      }
    } catch (cause) {
      logWriteFailed(warn, operation, job.id, attempt.attempt, cause);
    }
  }
}

/** pg-boss's reason: a handler's error `{ message }`, or its own expiry `{ value: { message } }`. */
function lostAttemptError(attempt: number, output: unknown): { name: string; code: string; message: string } {
  const o = output as { message?: unknown; value?: { message?: unknown } };
  const message = typeof o?.message === 'string' ? o.message : o?.value?.message;
  const reason = typeof message === 'string' ? message : JSON.stringify(output);
  const text = `attempt ${attempt} ended without settling its row: ${reason}`;
  return { name: 'AttemptLost', code: 'ATTEMPT_LOST', message: storableText(text, MESSAGE_CHARS) };
}

/**
 * `onBusy: { wait }`: put the batch's busy jobs back into pg-boss to run again at the next wake-up,
 * or record `skipped` those that waited `giveUpAfterSeconds` already. pg-boss is told 'completed'
 * for a job put back, which its attempt fence then ignores (the job is no longer active).
 */
async function putBack(
  store: LogStore,
  config: { queue: string; waits: BusyWaits },
  warn: WarningSink,
  busy: BusyJob[],
  results: Map<string, JobResult>,
): Promise<void> {
  let outcomes;
  try {
    outcomes = await config.waits.defer(config.queue, busy);
  } catch (cause) {
    // Not put back: pg-boss retries them by its normal rules (an attempt is spent).
    for (const { job, identity } of busy) results.set(job.id, claimFailed(warn, job, cause, 'defer', identity));
    return;
  }
  for (const [i, { job, identity, holderJid, policy }] of busy.entries()) {
    const outcome = outcomes[i]!;
    if (outcome.outcome === 'deferred') continue;
    if (outcome.outcome === 'stale') {
      warn({ code: 'STALE_ATTEMPT', message: `job ${job.id} was no longer active when it was to be put back`, jid: job.id, attempt: identity.attempt });
      results.set(job.id, { id: job.id, status: 'failed', output: { joblog: 'stale attempt' } });
      continue;
    }
    const error = new SectionBusyError(identity.userId!, identity.group!, holderJid, { gaveUpAfterSeconds: policy.giveUpAfterSeconds });
    try {
      await store.recordSettled(identity, 'skipped', { error, holderJid, waitedMs: outcome.waitedMs });
      results.set(job.id, { id: job.id, status: 'completed', output: { skipped: error.message, holderJid } });
    } catch (cause) {
      results.set(job.id, claimFailed(warn, job, cause, 'record-skipped', identity));
    }
  }
}

/**
 * `skip` and `throw` (see busy-history.ts): the busy job takes no row that could hold the section.
 * A row is written only when the job ends here, with the busy attempts before this one.
 */
async function onBusy(
  store: LogStore,
  config: { onBusy: BusyPolicy },
  pgJob: JobWithMetadata<unknown>,
  job: JobIdentity,
  attempt: Attempt,
  holderJid: string | null,
): Promise<JobResult> {
  const error = new SectionBusyError(job.userId!, job.group!, holderJid);
  // One statement, so no reader (nor a 'settled' listener) sees the row without its busy attempts.
  const settle = (state: 'skipped' | 'failed' | 'dead') =>
    store.recordSettled(job, state, { error, holderJid, busyBefore: busyHistoryOf(pgJob) });
  if (config.onBusy === 'skip') {
    await settle('skipped');
    return { id: job.jid, status: 'completed', output: { skipped: error.message, holderJid } };
  }
  // 'throw': pg-boss retries the job; on its last attempt the row records why it died.
  if (attempt.isLast) await settle(attempt.nonRetryable ? 'failed' : 'dead');
  return { id: job.jid, status: attempt.failStatus, output: busyOutput(pgJob, job, error) };
}

type Prepared<T> =
  | { data: T; userId: string | null; group: string | null; fields?: Record<string, unknown> }
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
  const parsed = withData(job, data);
  let userId: string | null;
  try {
    userId = userIdFor(config.userId?.(parsed), config.userIdType);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { invalid: new InvalidPayloadError(job.id, [{ path: 'userId', message }], { cause }), userId: null };
  }
  let group: string | null;
  try {
    group = normaliseGroup(typeof config.group === 'function' ? config.group(parsed) : config.group);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return { invalid: new InvalidPayloadError(job.id, [{ path: 'group', message }], { cause }), userId };
  }
  const fields: Record<string, unknown> = {};
  for (const [column, of] of Object.entries(config.fields ?? {})) {
    try {
      fields[column] = of(parsed) ?? null;
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      return { invalid: new InvalidPayloadError(job.id, [{ path: `fields.${column}`, message }], { cause }), userId };
    }
  }
  return { data, userId, group, ...(config.fields ? { fields } : {}) };
}

/**
 * The job with its parsed payload. A copy only when the schema changed the payload: pg-boss's job
 * objects carry some 25 fields, and copying one twice per job took more than half of the
 * tracker's own CPU time (measured at batch 50: 175 µs per job with the copies, 71 without).
 */
function withData<T>(job: JobWithMetadata<T>, data: T): JobWithMetadata<T> {
  return data === job.data ? job : { ...job, data };
}

/** Whose job had the bad payload, when the raw payload still tells; the row is written either way. */
function userIdOfInvalid<T>(config: TrackerConfig<T>, job: JobWithMetadata<T>): string | null {
  try {
    return userIdFor(config.userId?.(job), config.userIdType);
  } catch {
    return null;
  }
}

function pathOf(path: StandardSchemaV1.Issue['path']): string {
  return (path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
}

/**
 * `unwritten`: a job whose row is written after its handler. While it has no row it owns it (no
 * newer attempt, no reaper has one), and `fenced` writes the `started` row first, to lock it.
 */
function contextFor(store: LogStore, job: JobIdentity, attempt: Attempt, pgJob: JobWithMetadata<unknown>, unwritten: Running | null): JobContext {
  const ownsSection = () => store.owns(job.jid, job.attempt, unwritten !== null);
  return {
    attempt: attempt.attempt,
    maxAttempts: attempt.maxAttempts,
    isLastAttempt: attempt.isLast,
    signal: pgJob.signal,
    section: takesSection(job) ? { userId: job.userId!, group: job.group! } : null,
    ownsSection,
    async assertOwnsSection() {
      if (!(await ownsSection())) throw new StaleAttemptError(job.jid, job.attempt);
    },
    fenced: (fn, options) => store.fenced(job.jid, job.attempt, fn, options, unwritten ?? undefined),
  };
}
