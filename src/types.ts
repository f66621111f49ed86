import type { Job, JobWithMetadata, PgBoss } from 'pg-boss';
import type { StandardSchemaV1 } from './standard-schema.ts';

/**
 * The part of the app's PrismaClient the library uses. Any PrismaClient (Prisma 7 with a driver
 * adapter) fits; the library never creates one of its own.
 */
export interface PrismaLike {
  $queryRawUnsafe<T = unknown>(query: string, ...values: any[]): PromiseLike<T>;
}

/** The part of a PgBoss instance the library uses. */
/** `retry`, `resume` and `cancel` are used by the actions only (`joblog.retry()`, `joblog.cancel()`). */
export type BossLike = Pick<PgBoss, 'work' | 'offWork' | 'retry' | 'resume' | 'cancel' | 'getDb'>;

/** The states of a log row. Only `started` holds a section. */
export type JobState = 'started' | 'finished' | 'failed' | 'dead' | 'skipped';

/** One error of one attempt, as stored in `error` and in `errors[].error`. */
export interface RecordedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** A row of `job_logs`, as the library's queries return it. */
export interface JobLogRow {
  id: bigint;
  jid: string;
  queue: string;
  jobType: string;
  state: JobState;
  userId: string | null;
  group: string | null;
  attempt: number;
  maxAttempts: number;
  holderJid: string | null;
  queuedAt: Date | null;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  /** `onBusy: { wait }`: how long the job waited for its section before it ran or gave up. */
  waitedMs: number | null;
  /** Rows of `joblog.section()`: the lease its process renews; the reaper frees the section after it. */
  leaseUntil: Date | null;
  error: RecordedError | null;
  /** `holderJid`: on the entry of a busy attempt of `onBusy: 'throw'`, the job that held the section. */
  errors: { attempt: number; at: string; error: RecordedError; holderJid?: string | null }[];
  createdAt: Date;
  updatedAt: Date;
}

/** What a busy job does when another job holds its section. */
export type BusyPolicy = 'skip' | 'throw' | WaitPolicy;

/** Options of `createJobLog`. */
export interface JobLogOptions {
  /** The app's PrismaClient. */
  prisma: PrismaLike;
  /** The app's started PgBoss instance; needed by `work()` only (read-only use may leave it out). */
  boss?: BossLike;
  /**
   * The reaper, run every `intervalSeconds` while the log lives (see `joblog.stop()`). Default on
   * (every 60 s) when `boss` is given, off without it; `false` turns it off.
   */
  reaper?: ReaperOptions | false;
  /** pg-boss's schema (its `schema` option), where the reaper and `onBusy: { wait }` find jobs. Default `pgboss`. */
  bossSchema?: string;
  /** Prune on an interval while the log lives (see `joblog.stop()`). Default off. */
  prune?: PruneSchedule;
  /**
   * Summarise closed hours for `stats()` on an interval (see docs/performance.md). Default on
   * (every 60 s) when `boss` is given, off without it; `false` turns it off (run
   * `joblog.summarise()` yourself, or let another process's log do it).
   */
  summaries?: SummaryOptions | false;
  /**
   * The connection the log's claims, settles and other writes go through: your Prisma client
   * (default), or `'pg-boss'`: pg-boss's own pool (`boss.getDb()`), which costs less CPU per
   * statement than Prisma's raw path, and fails together with pg-boss (a job whose log write
   * fails is also a job pg-boss cannot complete). Reads and `ctx.fenced()` stay on Prisma.
   */
  writesThrough?: 'prisma' | 'pg-boss';
  /**
   * One OpenTelemetry span per attempt whose handler runs (`attempt <queue>`, a child of pg-boss's own `process <queue>` span; see docs/metrics.md),
   * when the app has `@opentelemetry/api` installed. Default true; without the package nothing is
   * loaded and nothing is done per job. `false` turns the spans off.
   */
  tracing?: boolean;

  /**
   * The app's name for the log's table (`@@map`), and its schema (`@@schema`): `'job_history'` or
   * `{ name: 'job_history', schema: 'app' }`. Default `job_logs` in the search_path. The enum
   * types, the section index and the user_id type are read from the catalog at start-up.
   */
  table?: string | { name?: string; schema?: string };
}

/** What the handler gets besides the job. */
export interface JobContext {
  /** 1-based attempt number: pg-boss `retryCount + 1`. */
  attempt: number;
  /** `retryLimit + 1`, or 1 for a non-retryable job. */
  maxAttempts: number;
  /** True when a failure now ends the job (`dead` or `failed`). */
  isLastAttempt: boolean;
  /** Aborts when pg-boss gives up on this attempt (timeout, lost heartbeat, shutdown). */
  signal: AbortSignal;
  /** The section this job holds, or null when it takes none (no user or no group). */
  section: { userId: string; group: string } | null;
  /**
   * True while this attempt still owns its row (and so its section). One query. A job without a
   * section has no row before its handler: true while it has none (no newer attempt wrote one).
   */
  ownsSection(): Promise<boolean>;
  /** Throws `StaleAttemptError` unless this attempt still owns its row. */
  assertOwnsSection(): Promise<void>;
  /**
   * Fenced side effects: runs `fn` in one transaction of the app's Prisma client that first locks
   * this attempt's row, and throws `StaleAttemptError` (nothing of `fn` runs) when the attempt no
   * longer owns it. While `fn` runs, no newer attempt, reaper or new holder can take the row or the
   * section, so a write made through `tx` never commits beside the section's next holder, even if
   * this process froze past its heartbeat before the call. Writes made outside `tx` are not fenced.
   * A job without a section that has no row yet writes its `started` row in the transaction first.
   */
  fenced<R>(fn: (tx: PrismaTransaction) => Promise<R>, options?: FencedOptions): Promise<R>;
}

/** The transaction client `ctx.fenced()` hands over: the app's own Prisma client type, inside its transaction. */
export type PrismaTransaction = any;

/** Passed on to Prisma's interactive `$transaction` (`maxWait`, `timeout`, `isolationLevel`). */
export interface FencedOptions {
  maxWait?: number;
  timeout?: number;
  isolationLevel?: string;
}

export type UserIdOf<T> = (job: JobWithMetadata<T>) => string | number | bigint | null | undefined;
export type GroupOf<T> = string | ((job: JobWithMetadata<T>) => string | null | undefined);

/** Options of `joblog.work`. */
export interface WorkOptions<T = unknown> {
  /** The job type written to the row: a value of the app's `JobType` enum. */
  type: string;
  /** The critical-section group; a job with no group (or no user) takes no section. */
  group?: GroupOf<T>;
  /** Reads the user id from the job. */
  userId?: UserIdOf<T>;
  /**
   * The app's own columns of the table, each filled from the job in the claim:
   * `{ organization_id: (job) => job.data.orgId }`. Named by column (as `@map` names it); checked
   * against the table at `work()`. A function that throws makes the payload invalid.
   */
  fields?: Record<string, (job: JobWithMetadata<T>) => unknown>;
  /** A payload schema (zod or any Standard Schema); a payload that fails it ends `failed`. */
  schema?: StandardSchemaV1<unknown, T>;
  /** What a busy job does. Default `throw`. */
  onBusy?: BusyPolicy;
  /** false: the job never retries; a failure ends `failed`. Default true. */
  retryable?: boolean;
  /** Passed through to `boss.work`. */
  batchSize?: number;
  localConcurrency?: number;
  pollingIntervalSeconds?: number;
  notifyPollingIntervalSeconds?: number;
  burstWhenReadyExceeds?: number;
  burstWhenBatchFull?: boolean;
  heartbeatRefreshSeconds?: number;
  minPriority?: number;
  maxPriority?: number;
}

export type TrackedHandler<T, R = unknown> = (job: JobWithMetadata<T>, ctx: JobContext) => Promise<R>;

/** Options of `joblog.section`. */
export interface SectionOptions {
  /** Id of the row; a random UUID when left out. */
  jid?: string;
  /** The job type written to the row. */
  type: string;
  userId: string | number | bigint;
  group: string;
  /** The app's own columns of the table, as for `work()`: `{ organization_id: 42 }`. */
  fields?: Record<string, unknown>;
  /** Written to the row's `queue` column. Default `section`. */
  queue?: string;
  /**
   * The section is held by a lease this process renews while `fn` runs; if the process dies, the
   * reaper frees the section once the lease has passed. Default 30 seconds.
   */
  leaseSeconds?: number;
}

export type { Job, JobWithMetadata };

// ---- Queries (joblog.find / stats / sections / prune) ----

/**
 * Bounds on one read (`find`, `get`, `stats`, `sections`); the dashboard and the CLI always
 * give them. With either, the read runs in a transaction of its own on one connection.
 */
export interface ReadOptions {
  /**
   * The server cancels any statement of this read that runs longer (`SET LOCAL
   * statement_timeout`); the read then throws `QueryTimeoutError`.
   */
  statementTimeoutMs?: number;
  /**
   * Aborting it cancels the statement running now (`pg_cancel_backend` of this read's backend)
   * and starts no other; the read then throws `ReadCancelledError`.
   */
  signal?: AbortSignal;
}

/** A point in time: a Date, or an ISO 8601 string. */
export type DateInput = Date | string;

/**
 * A span of time: milliseconds, or a string such as `'90s'`, `'15m'`, `'12h'`, `'30d'`, `'2w'`.
 */
export type DurationInput = number | string;

/** Filters of `joblog.find`. Every filter is optional; all given filters must hold. */
export interface FindQuery {
  userId?: string | number | bigint;
  /** Job types (values of the app's `JobType` enum). */
  types?: string[];
  states?: JobState[];
  group?: string;
  queue?: string;
  /** Rows that started at or after this time. */
  since?: DateInput;
  /** Rows that started before this time. */
  until?: DateInput;
  /** The row of one pg-boss job id. */
  jid?: string;
  /** Rows of jobs that waited at least this long for their section (`waitedMs`, `onBusy: { wait }`). */
  minWaitedMs?: number;
  /** Page size: default 50, at most 500. */
  limit?: number;
  /** `nextCursor` of the previous page; the filters must be the same as for that page. */
  cursor?: string | null;
}

/**
 * The last error as `find()` reads it: no stack, and the message cut to `FIND_MESSAGE_CHARS`
 * (200) characters. `joblog.get(jid)` reads the whole error and every attempt's.
 */
export interface ErrorSummary {
  name: string;
  code?: string;
  /** At most 200 characters of the stored message. */
  message: string;
  /** The stored message is longer than `message`. */
  truncated: boolean;
}

/**
 * A row of a `find()` page: every column but the error documents (`errors`, the stack), which
 * a list does not show and which may be large. `joblog.get(jid)` reads the whole row.
 */
export interface JobLogListRow extends Omit<JobLogRow, 'error' | 'errors'> {
  error: ErrorSummary | null;
}

/** One page of `joblog.find`, newest first by (started_at, id). */
export interface FindResult {
  rows: JobLogListRow[];
  /** Give it as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/** Width of a chart bucket: `'<n> minute(s)' | '<n> hour(s)' | '<n> day(s)' | '<n> week(s)'`. */
export type StatsBucket = string;

/** Options of `joblog.stats`: rows that started in [since, until). */
export interface StatsQuery {
  since: DateInput;
  /** Default now. */
  until?: DateInput;
  /** Also count per time bucket (for charts), e.g. `'1 hour'`, `'1 day'`. At most 1000 buckets. */
  bucket?: StatsBucket;
  /** Only these job types. */
  types?: string[];
}

/** Figures of one job type in the window. */
export interface JobTypeStats {
  jobType: string;
  total: number;
  counts: Record<JobState, number>;
  /** (failed + dead) / (finished + failed + dead); null when none of those. */
  failureRate: number | null;
  /**
   * Duration percentiles of settled runs (finished, failed, dead); null when none. Exact when the
   * window's rows of this type were all read live; once summarised hours take part, read from
   * combined histograms, within 4.9 % of the exact value (see docs/performance.md). `maxMs` is exact.
   */
  p50Ms: number | null;
  p95Ms: number | null;
  maxMs: number | null;
}

/** One time bucket: every job type together. Buckets without rows are included with zeros. */
export interface StatsBucketRow {
  /** Start of the bucket. */
  at: Date;
  total: number;
  /** failed + dead */
  failed: number;
}

export interface StatsResult {
  since: Date;
  until: Date;
  /** Ordered by job type. */
  byType: JobTypeStats[];
  /** Present when `bucket` was given, oldest first. */
  buckets?: StatsBucketRow[];
}

/** The state of a pg-boss job as `pgboss.job` holds it. */
export type BossJobState = 'created' | 'retry' | 'active' | 'completed' | 'cancelled' | 'failed';

/** Options of `joblog.sections`. */
export interface SectionsQuery {
  userId?: string | number | bigint;
  group?: string;
  /** The pg-boss schema. Default `pgboss`. */
  bossSchema?: string;
}

/** A section held now: a `started` row with a user and a group. */
export interface HeldSection {
  userId: string;
  group: string;
  jid: string;
  jobType: string;
  queue: string;
  attempt: number;
  maxAttempts: number;
  startedAt: Date;
  heldForMs: number;
  /** The pg-boss job's state; null when there is none (gone, or a `joblog.section` row). */
  bossState: BossJobState | null;
  /** For a `joblog.section` row: until when its holder's lease runs (renewed while it runs). */
  leaseUntil: Date | null;
  /**
   * True when the holder looks dead: its pg-boss job is settled (completed, failed, cancelled)
   * or gone while the row still holds the section, or (a `joblog.section` row) its lease has
   * run out. The reaper frees such sections.
   */
  stale: boolean;
}

/** Options of `joblog.prune`. */
export interface PruneOptions {
  /** Delete rows settled (finished_at) before this time, or this long ago. */
  olderThan: DateInput | DurationInput;
  /** Default all settled states: `finished`, `skipped`, `failed`, `dead`. Never `started`. */
  states?: Exclude<JobState, 'started'>[];
  /** Rows deleted per statement (one short transaction each). Default 5000. */
  batchSize?: number;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Called after each batch. */
  onProgress?: (progress: { deleted: number; batches: number }) => void;
  /** Stops between batches when aborted; resolves with what was deleted so far. */
  signal?: AbortSignal;
}

/** The `prune` option of `createJobLog`. */
export interface PruneSchedule {
  /** A duration (`'30d'`) or milliseconds: each pass deletes rows settled longer ago than that. */
  olderThan: DurationInput;
  /** Default all settled states. */
  states?: Exclude<JobState, 'started'>[];
  /** Default 5000. */
  batchSize?: number;
  /** Default 3600. */
  intervalSeconds?: number;
}

/** What one summary pass did (`joblog.summarise()`, the `summaries` interval). */
export interface SummariseResult {
  /** Closed hours summarised. */
  hours: number;
  /** Six-hour blocks (from 00, 06, 12 and 18 UTC) summed from their 6 summarised hours. */
  sixHours: number;
  /** UTC days summed from their 24 summarised hours. */
  days: number;
  /** Stale summaries (a row of theirs changed after they were written) deleted to be done again. */
  redone: number;
}

/** The `summaries` option of createJobLog: a summary pass every `intervalSeconds`. */
export interface SummaryOptions {
  /** Default 60. */
  intervalSeconds?: number;
  /** An hour is summarised once it ended this long ago. Default 600. */
  graceSeconds?: number;
}

export interface PruneResult {
  /** Rows deleted, or with `dryRun` the rows that would be. */
  deleted: number;
  batches: number;
  /** The cut-off used. */
  olderThan: Date;
  dryRun: boolean;
}

// ---- Crash recovery (joblog.reap, the reaper interval) and waiting for a busy section ----

/** What one pass of the reaper did. Rows of `active` pg-boss jobs are left alone and not counted. */
export interface ReapResult {
  /** Rows set `finished`: pg-boss completed the job but the final write was lost. */
  finished: number;
  /** Rows set `dead`: the job failed, was cancelled or is gone, held too long, or a section's lease expired. */
  dead: number;
  /** Rows left `started` because pg-boss will retry the job (`created` / `retry`). */
  kept: number;
  /** Rows written for jobs pg-boss failed or cancelled that the log never saw (their claim failed). */
  recorded: number;
  /** pg-boss jobs marked completed: pg-boss failed them although the attempt's row says `finished`. */
  completed: number;
}

/**
 * The longest a job may hold its section while pg-boss waits to retry it, in seconds, per section
 * group and per job type; when both apply the smaller wins. Unlisted: no limit.
 */
export interface MaxHoldSeconds {
  byGroup?: Record<string, number>;
  byType?: Record<string, number>;
}

/** The reaper that `createJobLog` runs on an interval. */
export interface ReaperOptions {
  /** Seconds between passes. Default 60. */
  intervalSeconds?: number;
  maxHoldSeconds?: MaxHoldSeconds;
}

/** `onBusy: { wait }`: put the busy job back and try again until the section opens or time runs out. */
export interface WaitPolicy {
  wait: {
    /** Seconds between tries (at least 1). Wake-ups are aligned to multiples of it. */
    retryEverySeconds: number;
    /** After this many seconds of waiting the job is recorded `skipped`. */
    giveUpAfterSeconds: number;
  };
}
