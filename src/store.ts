import type { BusyAttempt } from './busy-history.ts';
import * as sql from './sql.ts';
import { Coalescer } from './coalesce.ts';
import { ContendedSections } from './contended.ts';
import { recordError, toJobLogRow, toJson } from './rows.ts';
import { isValueError, sqlStateOf } from './db-errors.ts';
import { InvalidOptionsError, InvalidPayloadError, StaleAttemptError } from './errors.ts';
import { LogTable, type Column } from './names.ts';
import type { FencedOptions, JobLogRow, JobState, PrismaLike, RecordedError } from './types.ts';

/** A client with interactive transactions: `fenced()` and bounded reads need them. */
export type TransactionalPrisma = PrismaLike & {
  $transaction?<R>(fn: (tx: PrismaLike) => Promise<R>, options?: FencedOptions): Promise<R>;
};

/** What a job's row says about it before it runs. */
export interface JobIdentity {
  jid: string;
  queue: string;
  type: string;
  userId: string | null;
  group: string | null;
  attempt: number;
  maxAttempts: number;
  queuedAt: Date | null;
  /** The app's own columns to fill in the claim (`fields`): column → value. */
  fields?: Record<string, unknown>;
}

export type ClaimResult =
  | { outcome: 'claimed' | 'reentered' }
  | { outcome: 'busy'; holderJid: string | null }
  /** The row belongs to a newer attempt of the same job. */
  | { outcome: 'stale'; ownAttempt: number }
  /** The job's row is already terminal (finished, failed, dead or skipped). */
  | { outcome: 'settled'; state: JobState }
  /** The claim itself failed (this job's alone: see the claim coalescer's fallback). */
  | { outcome: 'error'; error: unknown };

/** A settle's outcome: true when written, false when fenced off (stale attempt), or its own failure. */
export type SettleResult = boolean | { error: unknown };

/** The section's holder can finish between the failed insert and the look-up; try again then. */
const CLAIM_TRIES = 5;

/** How an attempt ends, as one settling write: `started` keeps the row (and section) for the retry. */
export interface Settlement {
  jid: string;
  attempt: number;
  state: 'finished' | 'started' | 'failed' | 'dead';
  /** The failure; none for `finished`. */
  error?: unknown;
  /** A job without a section: its row is written now, with its run (see sql.recordRuns). */
  run?: Run;
}

/** A job without a section whose handler is running: its row is written after it, or while it runs long. */
export interface Running {
  identity: JobIdentity;
  /** `performance.now()` when its handler started. */
  startedAt: number;
}

/** The handler's run of a job whose row is written after it; `endedAt` as `startedAt` (when it never started). */
export interface Run extends Running {
  endedAt: number;
}

/** A `recordRunning` / `recordRuns` input row; its times as ms before `now` (`performance.now()`). */
function runInput(run: Running, now: number): Record<string, unknown> {
  const job = run.identity;
  return {
    ...job.fields,
    jid: job.jid, queue: job.queue, job_type: job.type, user_id: job.userId, group: job.group,
    attempt: job.attempt, max_attempts: job.maxAttempts, queued_at: job.queuedAt,
    started_ago: Math.max(0, now - run.startedAt),
  };
}

/**
 * Why a claim wrote no row, from a claim statement's `conflict` answer or a `claimConflict(s)` row:
 * the job's own row (of this attempt: an earlier try of this same claim wrote it, and the answer
 * was lost; of a newer attempt; or settled), or the section's holder. Null when neither was seen
 * (the holder left, or came after the statement's snapshot): the caller claims again, unless this
 * was its `last` try.
 */
function conflictOutcome(why: Record<string, unknown> | undefined, attempt: number, last: boolean): ClaimResult | null {
  if (why?.own_state === 'started') {
    const ownAttempt = Number(why.own_attempt);
    return ownAttempt === attempt ? { outcome: 'claimed' } : { outcome: 'stale', ownAttempt };
  }
  if (why?.own_state) return { outcome: 'settled', state: why.own_state as JobState };
  if (why?.holder_jid || last) return { outcome: 'busy', holderJid: (why?.holder_jid as string | null) ?? null };
  return null;
}

/** A claim statement's answer for one job: claimed or re-entered, else why not (conflictOutcome). */
function claimOutcome(answer: Record<string, unknown> | undefined, attempt: number, last: boolean): ClaimResult | null {
  if (answer?.outcome === 'claimed' || answer?.outcome === 'reentered') return { outcome: answer.outcome };
  return conflictOutcome(answer, attempt, last);
}

/** Runs one statement and resolves to its rows. */
export type SqlRunner = (statement: string, values: unknown[]) => Promise<Record<string, unknown>[]>;

/** Prisma's default `timeout` of an interactive transaction. */
const PRISMA_TRANSACTION_TIMEOUT_MS = 5000;

/** At most this many jobs go into one combined claim or settle statement. */
const MAX_BATCH_ROWS = 500;

/** How long a section found held counts as contended, and how many are remembered. */
const CONTENDED = { forMs: 10_000, max: 10_000 };

/** Every read and write of the log's table, through the caller's Prisma client. */
export class LogStore {
  readonly #prisma: PrismaLike;
  /** Binds every statement to the app's table (src/names.ts). */
  readonly #table: LogTable;
  // Shared by every worker of this job log: concurrent workers' claims (and settles) that arrive
  // while one statement runs go together in the next.
  readonly #claims: Coalescer<JobIdentity, ClaimResult>;
  readonly #settles: Coalescer<Settlement, SettleResult>;
  readonly #contended = new ContendedSections(CONTENDED);

  /** Told the jids of rows that just reached a terminal state (for the `settled` event). */
  onTerminal: ((jids: string[]) => void) | null = null;

  readonly #query: SqlRunner;
  /** Another connection (pg-boss's pool), for the rows of jobs without a section whose write failed on `query`'s. */
  readonly #lastResort: SqlRunner | undefined;

  /**
   * `query`: the connection the log's statements go through; the caller's Prisma client unless given.
   * `lastResort`: see writeRunsLastResort.
   */
  constructor(prisma: PrismaLike, options: { query?: SqlRunner; table?: LogTable; lastResort?: SqlRunner } = {}) {
    this.#prisma = prisma;
    this.#lastResort = options.lastResort;
    this.#query = options.query ?? (async (statement, values) => (await prisma.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...values)) ?? []);
    this.#table = options.table ?? LogTable.defaults();
    this.#claims = new Coalescer({
      runMany: (jobs) => this.#claimMany(jobs),
      // One job's failure (a value the table refuses, say) is that job's alone.
      fallback: (jobs) => Promise.all(jobs.map((job) => this.claim(job).catch((error: unknown): ClaimResult => ({ outcome: 'error', error })))),
      maxItems: MAX_BATCH_ROWS,
    });
    this.#settles = new Coalescer({
      runMany: (settlements) => this.#settleMany(settlements),
      fallback: (settlements) => Promise.all(settlements.map((s) => this.#settleOne(s).catch((error: unknown) => ({ error })))),
      maxItems: MAX_BATCH_ROWS,
    });
  }

  /** Claim the rows of many jobs: one statement for them and for other workers' claims meanwhile. */
  claimBatch(jobs: JobIdentity[]): Promise<ClaimResult[]> {
    return this.#claims.submit(jobs);
  }

  /** Settle many attempts; true for each written, false for each fenced off (stale attempt). */
  settleBatch(settlements: Settlement[]): Promise<SettleResult[]> {
    return this.#settles.submit(settlements);
  }

  /**
   * Jobs whose `fields` name the same columns share a statement (a column left out must keep its
   * default, not be written NULL): one statement per set of columns, usually one.
   */
  #claimMany(jobs: JobIdentity[]): Promise<ClaimResult[]> {
    return perFieldSet(jobs, (job) => job, (set) => this.#claimSet(set));
  }

  /** The columns of `job`'s fields, as the table describes them. */
  #fieldColumns(job: JobIdentity | undefined): Column[] {
    return job ? fieldNames(job).map((name) => this.#table.columns.get(name)!) : [];
  }

  async #claimSet(jobs: JobIdentity[]): Promise<ClaimResult[]> {
    const columns = this.#fieldColumns(jobs[0]);
    const results = new Array<ClaimResult | undefined>(jobs.length);
    let open = jobs.map((_, i) => i);
    for (let tries = 1; open.length > 0; tries++) {
      const input = open.map((i) => {
        const job = jobs[i]!;
        return {
          ...job.fields,
          jid: job.jid, queue: job.queue, job_type: job.type, user_id: job.userId, group: job.group,
          attempt: job.attempt, max_attempts: job.maxAttempts, queued_at: job.queuedAt,
        };
      });
      const statement = input.every((job) => job.attempt === 1) ? sql.claimFirstAttempts : sql.claimBatch;
      const answering = open.some((i) => this.#contended.has(jobs[i]!));
      const rows = await this.#rows(answering ? statement.answering : statement.plain, [toJson(input)], columns);
      const answers = new Map(rows.map((r) => [r.jid as string, r]));
      const last = tries >= CLAIM_TRIES;
      const again: number[] = [];
      const unexplained: number[] = [];
      for (const i of open) {
        const answer = answers.get(jobs[i]!.jid);
        if (!answer || answer.holder_lapsed) {
          unexplained.push(i);
          continue;
        }
        const outcome = claimOutcome(answer, jobs[i]!.attempt, last);
        if (outcome) results[i] = outcome;
        else again.push(i);
      }
      if (unexplained.length > 0) again.push(...await this.#explainLost(jobs, unexplained, results, last));
      open = again;
    }
    for (const [i, result] of results.entries()) if (result?.outcome === 'busy') this.#contended.mark(jobs[i]!);
    return results as ClaimResult[];
  }

  /**
   * Why the jobs at `lost` got no row, asked in a statement of its own (which ends the lapsed
   * holders' rows); resolves to those whose conflict is already gone (try again).
   */
  async #explainLost(jobs: JobIdentity[], lost: number[], results: (ClaimResult | undefined)[], last: boolean): Promise<number[]> {
    const input = lost.map((i) => ({ i, jid: jobs[i]!.jid, user_id: jobs[i]!.userId, group: jobs[i]!.group }));
    const rows = await this.#rows(sql.claimConflicts, [JSON.stringify(input)]);
    this.#lapsed(rows[0]);
    const again: number[] = [];
    for (const row of rows) {
      const i = Number(row.i);
      const outcome = conflictOutcome(row, jobs[i]!.attempt, last);
      if (outcome) results[i] = outcome;
      else again.push(i);
    }
    return again;
  }

  /** The settles of claimed rows in one statement, the rows of jobs without a section (`run`) in another. */
  async #settleMany(settlements: Settlement[]): Promise<SettleResult[]> {
    if (settlements.length === 1) return [await this.#settleOne(settlements[0]!)];
    const runs = settlements.filter((s) => s.run);
    if (runs.length === 0) return this.#settleClaimed(settlements);
    if (runs.length === settlements.length) return this.#writeRunSets(settlements);
    const claimed = settlements.filter((s) => !s.run);
    const [ran, settled] = await Promise.all([this.#writeRunSets(runs), this.#settleClaimed(claimed)]);
    let r = 0;
    let c = 0;
    return settlements.map((s) => (s.run ? ran[r++]! : settled[c++]!));
  }

  async #settleClaimed(settlements: Settlement[]): Promise<SettleResult[]> {
    if (settlements.length === 1) return [await this.#settleOne(settlements[0]!)];
    const input = settlements.map((s) => ({
      jid: s.jid, attempt: s.attempt, state: s.state,
      error: s.state === 'finished' ? null : recordError(s.error),
    }));
    const rows = await this.#rows(sql.settleBatch, [JSON.stringify(input)]);
    const written = new Set(rows.map((row) => row.jid as string));
    this.#terminal(settlements.filter((s) => s.state !== 'started' && written.has(s.jid)).map((s) => s.jid));
    return settlements.map((s) => written.has(s.jid));
  }

  #writeRunSets(settlements: Settlement[]): Promise<boolean[]> {
    return perFieldSet(settlements, (s) => s.run!.identity, (set) => this.#writeRuns(set));
  }

  /**
   * The rows of jobs without a section whose write kept failing on its connection, tried once
   * through `lastResort`: unlike a claimed job's row, which the reaper settles from pg-boss, such a
   * job has no row at all if this is lost too. Null when there is no other connection.
   */
  async writeRunsLastResort(settlements: Settlement[]): Promise<boolean[] | null> {
    const lastResort = this.#lastResort;
    if (!lastResort) return null;
    return perFieldSet(settlements, (s) => s.run!.identity, (set) => this.#writeRuns(set, undefined, lastResort));
  }

  /** Write the rows of jobs without a section (all with the same `fields` columns) in one statement. */
  async #writeRuns(settlements: Settlement[], refused?: unknown, query = this.#query): Promise<boolean[]> {
    const now = performance.now();
    const input = settlements.map((s) => ({
      ...runInput(s.run!, now), finished_ago: Math.max(0, now - s.run!.endedAt), state: s.state,
      error: s.state === 'finished' ? null : recordError(s.error),
      refused: refused === undefined ? null : recordError(refused),
    }));
    const rows = await query(this.#table.bind(sql.recordRuns, this.#fieldColumns(settlements[0]!.run!.identity)), [toJson(input)]);
    const written = new Set(rows.map((row) => row.jid as string));
    this.#terminal(settlements.filter((s) => s.state !== 'started' && written.has(s.jid)).map((s) => s.jid));
    return settlements.map((s) => written.has(s.jid));
  }

  /**
   * One job's row written after its handler. The handler has run: a user id or field the table
   * refuses (a foreign key, a type) cannot stop it any more, so the row is written without them
   * and its `errors` names what was refused (as a claim's refusal would: InvalidPayloadError).
   */
  async #writeRun(s: Settlement): Promise<boolean> {
    try {
      return (await this.#writeRuns([s]))[0]!;
    } catch (cause) {
      if (!isValueError(cause)) throw cause;
      const { fields, ...identity } = s.run!.identity;
      const path = fields ? 'userId, group, fields' : sqlStateOf(cause) === '23503' ? 'userId' : 'userId, group';
      const values = toJson([identity.userId, identity.group, ...(fields ? [fields] : [])]);
      const refused = new InvalidPayloadError(s.jid, [{ path, message: `the log refused the job's ${path} ${values}: ${recordError(cause).message}` }], { cause });
      const bare = { ...s, run: { ...s.run!, identity: { ...identity, userId: null, group: null } } };
      return (await this.#writeRuns([bare], refused))[0]!;
    }
  }

  /**
   * `started` rows for jobs without a section that are running now (see sql.recordRunning), one
   * statement per set of `fields` columns. Resolves to the jids written.
   */
  async recordRunning(runs: Running[]): Promise<Set<string>> {
    const written = await perFieldSet(runs, (r) => r.identity, async (set) => {
      const [statement, input] = this.#recordRunning(set);
      const rows = await this.#query(statement, [input]);
      const jids = new Set(rows.map((row) => row.jid as string));
      return set.map((r) => jids.has(r.identity.jid));
    });
    return new Set(runs.filter((_, i) => written[i]).map((r) => r.identity.jid));
  }

  /** `sql.recordRunning` bound to the table, and its input, for runs whose `fields` name the same columns. */
  #recordRunning(runs: Running[]): [statement: string, input: string] {
    const now = performance.now();
    return [this.#table.bind(sql.recordRunning, this.#fieldColumns(runs[0]!.identity)), toJson(runs.map((r) => runInput(r, now)))];
  }

  #terminal(jids: string[]): void {
    if (jids.length > 0) this.onTerminal?.(jids);
  }

  /** A conflict diagnosis ended section rows whose lease had passed (see sql.claimConflict). */
  #lapsed(why: Record<string, unknown> | undefined): void {
    this.#terminal((why?.lapsed_jids as string[] | null | undefined) ?? []);
  }

  #settleOne(s: Settlement): Promise<boolean> {
    if (s.run) return this.#writeRun(s);
    return s.state === 'finished' ? this.finish(s.jid, s.attempt) : this.recordFailure(s.jid, s.attempt, s.error, s.state);
  }

  /** Run `statement` bound to the app's table (and, for a claim, to the extra `columns` it fills). */
  #rows(statement: string, values: unknown[], columns?: Column[]): Promise<Record<string, unknown>[]> {
    return this.#query(this.#table.bind(statement, columns), values);
  }

  async claim(job: JobIdentity): Promise<ClaimResult> {
    const values = [job.jid, job.queue, job.type, job.userId, job.group, job.attempt, job.maxAttempts, job.queuedAt];
    return this.#claimOrDiagnose(job, sql.claim, values);
  }

  /**
   * Run a claim statement; when it wrote no row, learn why (from its own answer for a contended
   * section, else from `claimConflict`, which also ends a holder whose lease passed), and try
   * again if no holder was seen (it just left, or came after the statement began).
   * A job with `fields` passes them as one more parameter, a jsonb object (`claim`'s $9, `claimSection`'s $7).
   */
  async #claimOrDiagnose(job: JobIdentity, statement: sql.ClaimStatement, values: unknown[]): Promise<ClaimResult> {
    const columns = this.#fieldColumns(job);
    if (columns.length > 0) values = [...values, toJson(job.fields)];
    for (let tries = 1; ; tries++) {
      let [why] = await this.#rows(this.#contended.has(job) ? statement.answering : statement.plain, values, columns);
      if (!why || why.holder_lapsed) {
        [why] = await this.#rows(sql.claimConflict, [job.jid, job.userId, job.group]);
        this.#lapsed(why);
      }
      const outcome = claimOutcome(why, job.attempt, tries >= CLAIM_TRIES);
      if (outcome?.outcome === 'busy') this.#contended.mark(job);
      if (outcome) return outcome;
    }
  }

  /** True when the row was settled by this attempt; false when fenced off (stale attempt). */
  async finish(jid: string, attempt: number): Promise<boolean> {
    const written = (await this.#rows(sql.finish, [jid, attempt])).length === 1;
    if (written) this.#terminal([jid]);
    return written;
  }

  /** Record a failed attempt; `next` is `started` while a retry is due. False when fenced off. */
  async recordFailure(jid: string, attempt: number, error: unknown, next: 'started' | 'failed' | 'dead'): Promise<boolean> {
    const rows = await this.#rows(sql.recordFailure, [jid, attempt, JSON.stringify(recordError(error)), next]);
    if (rows.length === 1 && next !== 'started') this.#terminal([jid]);
    return rows.length === 1;
  }

  /** Write the row of a job that ends without running. False if the job already had a row. */
  async recordSettled(
    job: JobIdentity,
    state: 'skipped' | 'failed' | 'dead',
    details: { error?: unknown; holderJid?: string | null; waitedMs?: number; busyBefore?: BusyAttempt[] },
  ): Promise<boolean> {
    const error = details.error === undefined ? null : JSON.stringify(recordError(details.error));
    const rows = await this.#rows(sql.recordSettled, [
      job.jid, job.queue, job.type, job.userId, job.group, job.attempt, job.maxAttempts, job.queuedAt,
      state, error, details.holderJid ?? null, details.waitedMs ?? null, JSON.stringify(details.busyBefore ?? []),
    ]);
    if (rows.length === 1) this.#terminal([job.jid]);
    return rows.length === 1;
  }

  /** `unwritten`: a job whose row is written after its handler, which owns its (missing) row while there is none. */
  async owns(jid: string, attempt: number, unwritten = false): Promise<boolean> {
    const [row] = await this.#rows(sql.ownsRow, [jid, attempt, unwritten]);
    return row?.owns === true;
  }

  /** The jids of `attempts` that still own their rows (or, `unwritten`, have none yet), in one statement. */
  async ownsMany(attempts: { jid: string; attempt: number; unwritten?: boolean }[]): Promise<Set<string>> {
    const rows = await this.#rows(sql.ownsRows, [JSON.stringify(attempts)]);
    return new Set(rows.map((r) => r.jid as string));
  }

  /**
   * Run `fn` in one transaction of the caller's Prisma client that first locks this attempt's row
   * (still `started`, still this attempt, lease not run out): no reaper, retry or new holder can
   * take the row (and so the section) until the transaction ends, so `fn`'s writes commit only
   * while the attempt owns its section. Throws `StaleAttemptError` when it no longer does.
   * `run`: a job without a section, which may have no row yet: the transaction writes its `started`
   * row first (sql.recordRunning), so there is a row to lock, committed with `fn`'s writes.
   */
  async fenced<R>(jid: string, attempt: number, fn: (tx: PrismaLike) => Promise<R>, options?: FencedOptions, run?: Running): Promise<R> {
    const prisma = this.#prisma as TransactionalPrisma;
    if (typeof prisma.$transaction !== 'function') {
      throw new InvalidOptionsError('fenced', [{ path: 'prisma', message: 'the Prisma client given to createJobLog has no $transaction: pass the PrismaClient itself, not a transaction client' }]);
    }
    return prisma.$transaction(async (tx) => {
      if (run) await tx.$queryRawUnsafe(...this.#recordRunning([run]));
      const rows = (await tx.$queryRawUnsafe<unknown[]>(this.#table.bind(sql.lockOwnRow), jid, attempt, options?.timeout ?? PRISMA_TRANSACTION_TIMEOUT_MS)) ?? [];
      if (rows.length !== 1) throw new StaleAttemptError(jid, attempt);
      return fn(tx);
    }, options);
  }

  async holder(userId: string, group: string): Promise<JobLogRow | null> {
    const [row] = await this.#rows(sql.holder, [userId, group]);
    return row ? toJobLogRow(row) : null;
  }

  async inProgress(userId: string, group: string | null, types: string[] | null): Promise<JobLogRow[]> {
    return (await this.#rows(sql.inProgress, [userId, group, types])).map(toJobLogRow);
  }

  async byJids(jids: string[]): Promise<JobLogRow[]> {
    return (await this.#rows(sql.byJids, [jids])).map(toJobLogRow);
  }

  async byJid(jid: string): Promise<JobLogRow | null> {
    const [row] = await this.#rows(sql.byJid, [jid]);
    return row ? toJobLogRow(row) : null;
  }

  /** Claim the row of a `joblog.section()`, held by a lease of `leaseSeconds`. */
  async claimSection(job: JobIdentity, leaseSeconds: number): Promise<ClaimResult> {
    const values = [job.jid, job.queue, job.type, job.userId, job.group, leaseSeconds];
    return this.#claimOrDiagnose(job, sql.claimSection, values);
  }

  /** Extend a section's lease; false once the row is no longer held (settled or reaped). */
  async renewLease(jid: string, leaseSeconds: number): Promise<boolean> {
    return (await this.#rows(sql.renewLease, [jid, leaseSeconds])).length === 1;
  }

  /** A retry's previous attempt left no error in the row: record `error` for it (once). */
  /** `fetchedAt` null: whoever wrote the row (see sql.recordLostAttempt). */
  async recordLostAttempt(jid: string, attempt: number, error: RecordedError, fetchedAt: Date | null): Promise<boolean> {
    return (await this.#rows(sql.recordLostAttempt, [jid, attempt, JSON.stringify(error), fetchedAt])).length === 1;
  }

  /** Write the busy attempts before `attempt` into its row's `errors` (each once). */
  async recordBusyAttempts(jid: string, attempt: number, busy: BusyAttempt[]): Promise<boolean> {
    return (await this.#rows(sql.recordBusyAttempts, [jid, attempt, JSON.stringify(busy)])).length === 1;
  }

  /** Record how long an `onBusy: { wait }` job waited (since `since`) before it got its section. */
  async recordWaited(jid: string, attempt: number, since: Date): Promise<boolean> {
    return (await this.#rows(sql.recordWaited, [jid, attempt, since])).length === 1;
  }
}

/**
 * `each` once per set of `fields` columns among `items` (usually one set), the outputs in the
 * items' order: a column left out of a statement must keep its default, not be written NULL.
 */
async function perFieldSet<I, O>(items: I[], identityOf: (item: I) => JobIdentity, each: (items: I[]) => Promise<O[]>): Promise<O[]> {
  const sets = new Map<string, number[]>();
  for (const [i, item] of items.entries()) {
    const key = fieldNames(identityOf(item)).join('\0');
    const set = sets.get(key);
    if (set) set.push(i);
    else sets.set(key, [i]);
  }
  if (sets.size === 1) return each(items);
  const results = new Array<O>(items.length);
  await Promise.all([...sets.values()].map(async (indexes) => {
    const outputs = await each(indexes.map((i) => items[i]!));
    for (const [k, i] of indexes.entries()) results[i] = outputs[k]!;
  }));
  return results;
}

/** The app's columns a job fills, in a fixed order. */
function fieldNames(job: JobIdentity): string[] {
  return job.fields ? Object.keys(job.fields).sort() : [];
}
