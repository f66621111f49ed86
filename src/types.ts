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
export type BossLike = Pick<PgBoss, 'work' | 'offWork'>;

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
  error: RecordedError | null;
  errors: { attempt: number; at: string; error: RecordedError }[];
  createdAt: Date;
  updatedAt: Date;
}

/** What a busy job does when another job holds its section. */
export type BusyPolicy = 'skip' | 'throw';

/** Options of `createJobLog`. */
export interface JobLogOptions {
  /** The app's PrismaClient. */
  prisma: PrismaLike;
  /** The app's started PgBoss instance. */
  boss: BossLike;
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
  /** True while this attempt still owns its row (and so its section). One query. */
  ownsSection(): Promise<boolean>;
  /** Throws `StaleAttemptError` unless this attempt still owns its row. */
  assertOwnsSection(): Promise<void>;
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
  /** Written to the row's `queue` column. Default `section`. */
  queue?: string;
}

export type { Job, JobWithMetadata };
