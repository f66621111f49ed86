import { EventEmitter } from 'node:events';
import {
  jobLogOptionsSchema,
  parseOptions,
  reaperOptionsSchema,
  summaryScheduleSchema,
  queueNameSchema,
  sectionOptionsSchema,
  workOptionsSchema,
} from './options.ts';
import { isSectionBusyError, runSection } from './section.ts';
import { LogStore, type SqlRunner } from './store.ts';
import { createBatchHandler, type BusyEvent, type JobLogWarning } from './tracker.ts';
import { checkUserId, checkUserIdType, groupSchema, userIdSchema } from './ids.ts';
import { assertJobTypes } from './job-types.ts';
import { InvalidOptionsError } from './errors.ts';
import { boundClient, readLogTable, type LogTable, type TableName } from './names.ts';
import { find, get, sectionGroups, sections, stats } from './queries.ts';
import { prune } from './maintenance/pruner.ts';
import { reap } from './maintenance/reaper.ts';
import { summarise } from './maintenance/summariser.ts';
import { cancelJob, releaseSection, retryJob, type ActionDeps, type ActionOptions, type ActionResult } from './actions.ts';
import { BossReconciler } from './maintenance/reconcile.ts';
import { BusyWaits } from './waiting.ts';
import { loadTracer, type AttemptTracer } from './tracing.ts';
import { createMetrics, type MetricsOptions, type MetricsRegistry } from './metrics.ts';
import type {
  BossLike,
  FindQuery,
  FindResult,
  HeldSection,
  JobLogOptions,
  JobLogRow,
  PrismaLike,
  PruneOptions,
  PruneResult,
  ReadOptions,
  ReapResult,
  SectionsQuery,
  StatsQuery,
  StatsResult,
  SectionOptions,
  SummariseResult,
  TrackedHandler,
  WorkOptions,
} from './types.ts';
import { z } from 'zod';
import type { WorkOptions as BossWorkOptions } from 'pg-boss';

/** The tracker's statements on pg-boss's own pool (`writesThrough: 'pg-boss'`). */
function bossRunner(boss: BossLike): SqlRunner {
  const db = boss.getDb();
  return async (statement, values) => (await db.executeSql(statement, values)).rows as Record<string, unknown>[];
}

/** `bossRunner`, made at its first statement (a boss that is never needed is never asked for its pool). */
function lazyBossRunner(boss: BossLike): SqlRunner {
  let run: SqlRunner | undefined;
  return (statement, values) => (run ??= bossRunner(boss))(statement, values);
}

const PASS_NAMES = { REAP_FAILED: 'reaper', PRUNE_FAILED: 'pruner', SUMMARISE_FAILED: 'summary' } as const;

/** How far back the first reconciliation pass of a process reads pg-boss's ended jobs. */
const RECONCILE_LOOKBACK_SECONDS = 3600;

export interface JobLogEvents {
  /** A write was fenced off (stale attempt) or failed; the job itself went on. */
  warning: [JobLogWarning];
  /**
   * A row reached a terminal state (`finished`, `failed`, `dead`, `skipped`), written by a worker,
   * a `section()`, the reaper or its pg-boss pass. Emitted after the write, outside the batch.
   */
  settled: [JobLogRow];
  /** A job found its section held by another job (each time it does, whatever its policy). */
  busy: [BusyEvent];
  /** A pass of the reaper interval settled some rows (passes that changed nothing are not reported). */
  reaped: [ReapResult];
  /** A pass of the prune interval deleted some rows (passes that deleted nothing are not reported). */
  pruned: [PruneResult];
  /** A pass of the summary interval summarised or redid some periods (idle passes are not reported). */
  summarised: [SummariseResult];
}

const jidSchema = z.uuid({ message: 'expected a UUID' });

const inProgressSchema = z.strictObject({
  userId: userIdSchema,
  group: groupSchema.optional(),
  types: z.array(z.string().min(1)).optional(),
});

/** What the log works with once its table has been read from the catalog. */
interface Opened {
  table: LogTable;
  store: LogStore;
  tracer: AttemptTracer | undefined;
}

/** The job log of one application: tracked workers, sections and queries. */
export class JobLog extends EventEmitter<JobLogEvents> {
  readonly #tableName: TableName;
  /** The connection of the log's writes (`writesThrough: 'pg-boss'`); Prisma's when undefined. */
  readonly #writesThrough: SqlRunner | undefined;
  #opened: Promise<Opened> | undefined;
  #sectionIndex: string | null = null;
  readonly #prisma: PrismaLike;
  /** The app's client with every statement bound to its table (read on the first statement): what the queries, maintenance and actions run on. */
  readonly #bound: PrismaLike;
  readonly #boss: BossLike | undefined;
  readonly #bossSchema: string;
  readonly #waits: BusyWaits;
  readonly #maxHoldSeconds: { byGroup: Record<string, number>; byType: Record<string, number> };
  /** The queues this log's workers track, with their job types: what reap() reconciles from pg-boss's side. */
  readonly #tracked = new Map<string, string>();
  readonly #reconciler: BossReconciler;
  /** Every interval this log runs (the reaper's, the pruner's); stop() clears them all. */
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #tracing: boolean;
  /** The registries metrics() has filled, by registry (undefined: the one it made itself). */
  readonly #registries = new Map<MetricsRegistry | undefined, Promise<MetricsRegistry>>();

  /** @internal use createJobLog */
  constructor(options: JobLogOptions) {
    super();
    const parsed = parseOptions(jobLogOptionsSchema, options, 'createJobLog');
    this.#tableName = parsed.table;
    this.#writesThrough = parsed.writesThrough === 'pg-boss' ? bossRunner(parsed.boss as BossLike) : undefined;
    this.#prisma = parsed.prisma as PrismaLike;
    this.#bound = boundClient(this.#prisma, async () => (await this.#open()).table);
    this.#boss = parsed.boss as BossLike | undefined;
    this.#bossSchema = parsed.bossSchema;
    this.#tracing = parsed.tracing;
    this.#waits = new BusyWaits(this.#prisma, parsed.bossSchema);
    this.#reconciler = new BossReconciler(parsed.bossSchema, RECONCILE_LOOKBACK_SECONDS);
    const reaper = parsed.reaper ?? (parsed.boss ? reaperOptionsSchema.parse({}) : false);
    this.#maxHoldSeconds = reaper ? reaper.maxHoldSeconds : { byGroup: {}, byType: {} };
    if (reaper) this.#every(reaper.intervalSeconds * 1000, 'REAP_FAILED', () => this.#reapPass());
    const plan = parsed.prune;
    if (plan) this.#every(plan.intervalSeconds * 1000, 'PRUNE_FAILED', () => this.#prunePass(plan));
    const summaries = parsed.summaries ?? (parsed.boss ? summaryScheduleSchema.parse({}) : false);
    if (summaries) this.#every(summaries.intervalSeconds * 1000, 'SUMMARISE_FAILED', () => this.#summarisePass(summaries.graceSeconds));
  }

  /**
   * Run `task` every `ms` until stop(). The timer is unref'd (it never keeps a process alive) and a
   * pass never overlaps the previous one; a failed pass is reported as a warning.
   */
  #every(ms: number, code: 'REAP_FAILED' | 'PRUNE_FAILED' | 'SUMMARISE_FAILED', task: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      task()
        .catch((cause) => this.#warn({ code, message: `${PASS_NAMES[code]} pass failed: ${String(cause)}`, cause }))
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  /**
   * The log's table as the catalog describes it, read once (a failed read is not kept: the next
   * call reads again). Every statement the log runs is bound to it.
   */
  async #open(): Promise<Opened> {
    this.#opened ??= Promise.all([readLogTable(this.#prisma, this.#tableName), this.#tracing ? loadTracer() : undefined]).then(([table, tracer]) => {
      const store = new LogStore(this.#prisma, {
        table,
        ...(this.#writesThrough ? { query: this.#writesThrough } : this.#boss ? { lastResort: lazyBossRunner(this.#boss) } : {}),
      });
      store.onTerminal = (jids) => this.#emitSettled(jids);
      this.#sectionIndex = table.sectionIndex;
      return { table, store, tracer };
    });
    try {
      return await this.#opened;
    } catch (error) {
      this.#opened = undefined;
      throw error;
    }
  }

  /** A user id given to a query or section (already checked by the id rule), against the user_id column's type. */
  #userId(id: string, table: LogTable, where: string): string {
    const checked = checkUserIdType(id, table.userIdType);
    if (!checked.ok) throw new InvalidOptionsError(where, [{ path: 'userId', message: checked.problem }]);
    return checked.value;
  }

  /**
   * A job type must be a value of the app's `JobType` enum: checked once at `work()` / `section()`
   * rather than failing every job's first write. The enum is read once per log.
   */
  async #assertJobType(type: string, where: string): Promise<void> {
    await assertJobTypes(this.#bound, [type], where, 'type');
  }

  async #prunePass(plan: { olderThan: number | string; states?: PruneOptions['states']; batchSize?: number }): Promise<void> {
    const result = await this.prune({ olderThan: plan.olderThan, states: plan.states, batchSize: plan.batchSize });
    if (result.deleted > 0) this.#notify('pruned', result);
  }

  async #summarisePass(graceSeconds: number): Promise<void> {
    const result = await this.summarise({ graceSeconds });
    if (result.hours > 0 || result.sixHours > 0 || result.days > 0 || result.redone > 0) this.#notify('summarised', result);
  }

  async #reapPass(): Promise<void> {
    const result = await this.reap();
    if (result.finished > 0 || result.dead > 0 || result.recorded > 0 || result.completed > 0) this.#notify('reaped', result);
  }

  /**
   * Warnings reach their listeners at once (a test or a logger reads them in order); a listener
   * that throws is reported on Node's own warning channel and never reaches the job.
   */
  #warn(warning: JobLogWarning): void {
    for (const listener of this.listeners('warning')) {
      try {
        listener(warning);
      } catch (cause) {
        process.emitWarning(`pg-boss-joblog: a 'warning' listener threw: ${String(cause)}`, 'JobLogListenerWarning');
      }
    }
  }

  /**
   * Events run their listeners after the write they report, on a later turn of the event loop:
   * a listener never slows the batch, and one that throws (or rejects) is reported as a
   * `LISTENER_FAILED` warning.
   */
  #notify<K extends 'settled' | 'busy' | 'reaped' | 'pruned' | 'summarised'>(event: K, ...args: JobLogEvents[K]): void {
    if (this.listenerCount(event) === 0) return;
    setImmediate(() => {
      for (const listener of this.listeners(event) as ((...a: JobLogEvents[K]) => unknown)[]) {
        const failed = (cause: unknown) => this.#warn({ code: 'LISTENER_FAILED', message: `a '${event}' listener threw: ${String(cause)}`, cause });
        try {
          const result = listener(...args);
          if (result && typeof (result as PromiseLike<unknown>).then === 'function') (result as Promise<unknown>).catch(failed);
        } catch (cause) {
          failed(cause);
        }
      }
    });
  }

  /** The `settled` event: the rows are read (one statement) only when someone listens. */
  #emitSettled(jids: string[]): void {
    if (this.listenerCount('settled') === 0) return;
    setImmediate(() => {
      this.#open().then(({ store }) => store.byJids(jids)).then(
        (rows) => { for (const row of rows) if (row.state !== 'started') this.#notify('settled', row); },
        (cause) => this.#warn({ code: 'LISTENER_FAILED', message: `the rows of a 'settled' event could not be read`, cause }),
      );
    });
  }

  /**
   * Register a tracked pg-boss worker: each job's row is claimed before `handler` runs and
   * settled after it. Resolves to pg-boss's worker id.
   */
  async work<T = any, R = unknown>(queue: string, options: WorkOptions<T>, handler: TrackedHandler<T, R>): Promise<string> {
    const name = parseOptions(queueNameSchema, queue, 'work (queue name)');
    const boss = this.#boss;
    if (!boss) {
      throw new InvalidOptionsError(`work('${name}')`, [
        { path: 'boss', message: 'createJobLog was given no boss: pass your started PgBoss to createJobLog({ prisma, boss }) to register workers' },
      ]);
    }
    if (typeof handler !== 'function') {
      throw new InvalidOptionsError(`work('${name}')`, [{ path: 'handler', message: 'expected a function (job, ctx) => Promise' }]);
    }
    const { type, group, userId, fields, schema, onBusy, retryable, ...bossOptions } = parseOptions(
      workOptionsSchema,
      options,
      `work('${name}')`,
    );
    await this.#assertJobType(type, `work('${name}')`);
    const { table, store, tracer } = await this.#open();
    if (fields) table.assertFieldColumns(Object.keys(fields), `work('${name}')`);
    const busy = (event: BusyEvent) => this.#notify('busy', event);
    const config = { queue: name, type, group, userId, userIdType: table.userIdType, fields, schema, onBusy, retryable, waits: this.#waits, busy, tracer } as Parameters<
      typeof createBatchHandler<T>
    >[1];
    const batch = createBatchHandler<T>(store, config, handler, (w) => this.#warn(w));
    if (!this.#tracked.has(name)) this.#tracked.set(name, type);
    const workOptions: BossWorkOptions & { includeMetadata: true; perJobResults: true } = {
      ...bossOptions,
      includeMetadata: true,
      perJobResults: true,
    };
    return boss.work(name, workOptions, batch);
  }

  /** Run `fn` inside a (user, group) section outside pg-boss. Throws `SectionBusyError` when held. */
  async section<R>(options: SectionOptions, fn: (ctx: { jid: string }) => Promise<R>): Promise<R> {
    const parsed = parseOptions(sectionOptionsSchema, options, 'section');
    if (typeof fn !== 'function') {
      throw new InvalidOptionsError('section', [{ path: 'fn', message: 'expected a function ({ jid }) => Promise' }]);
    }
    await this.#assertJobType(parsed.type, 'section');
    const { table, store } = await this.#open();
    const { fields, ...rest } = parsed;
    if (fields) table.assertFieldColumns(Object.keys(fields), 'section');
    return runSection(store, { ...rest, userId: this.#userId(parsed.userId, table, 'section'), ...(fields ? { fields } : {}) }, fn, (w) => this.emit('warning', w));
  }

  /** Rows of a user's jobs that are running or waiting for a retry, oldest first. */
  async inProgress(query: { userId: string | number | bigint; group?: string; types?: string[] }): Promise<JobLogRow[]> {
    const q = parseOptions(inProgressSchema, query, 'inProgress');
    if (q.types) await assertJobTypes(this.#bound, q.types, 'inProgress', 'types');
    const { table, store } = await this.#open();
    return store.inProgress(this.#userId(q.userId, table, 'inProgress'), q.group ?? null, q.types ?? null);
  }

  /** The row of the job that holds the (user, group) section, or null when it is open. */
  async holder(userId: string | number | bigint, group: string): Promise<JobLogRow | null> {
    const q = parseOptions(inProgressSchema.pick({ userId: true }).extend({ group: groupSchema }), { userId, group }, 'holder');
    const { table, store } = await this.#open();
    return store.holder(this.#userId(q.userId, table, 'holder'), q.group);
  }

  // Each read takes `ReadOptions` (statement timeout, abort signal): see types.ts.

  /** The whole row of one job, by pg-boss id: every attempt's error, stacks included. */
  async get(jid: string, options?: ReadOptions): Promise<JobLogRow | null> {
    const id = parseOptions(jidSchema, jid, 'get (jid)');
    return get(this.#bound, id, options);
  }

  /**
   * Rows matching every filter, newest first, one keyset page at a time (`nextCursor`). A row
   * carries the start of its last error's message, not the error documents: `get(jid)` has them.
   */
  async find(query: FindQuery = {}, options?: ReadOptions): Promise<FindResult> {
    await this.#checkQueryUserId(query, 'find');
    return find(this.#bound, query, options);
  }

  /** Per job type in [since, until): counts by state, failure rate, duration p50/p95/max; optional buckets. */
  async stats(query: StatsQuery, options?: ReadOptions): Promise<StatsResult> {
    return stats(this.#bound, query, options);
  }

  /** Every section held now, with its pg-boss job's state and whether it looks stale. */
  async sections(query: SectionsQuery = {}, options?: ReadOptions): Promise<HeldSection[]> {
    await this.#checkQueryUserId(query, 'sections');
    return sections(this.#bound, { bossSchema: this.#bossSchema, ...query }, options);
  }

  /** Delete settled rows (never `started`) that finished before `olderThan`, in short batches. */
  async prune(options: PruneOptions): Promise<PruneResult> {
    return prune(this.#bound, options);
  }

  /**
   * Summarise for `stats()` every closed hour not yet summarised (and every UTC day whose 24 hours
   * are), and redo the summaries a later change made stale: what the `summaries` interval runs.
   * Idempotent and safe from many processes at once. See maintenance/summariser.ts.
   */
  async summarise(options: { graceSeconds?: number } = {}): Promise<SummariseResult> {
    return summarise(this.#bound, options);
  }

  /**
   * Reconcile every `started` row with pg-boss's job table once (what the reaper interval runs):
   * completed → `finished`; failed, cancelled or gone → `dead` with the reason; waiting for a retry
   * → kept, unless held longer than `maxHoldSeconds` → `dead`; active → untouched; a
   * `joblog.section()` row whose lease expired → `dead`. Then from pg-boss's side, for the queues this
   * log's workers track: a job pg-boss failed or cancelled that has no row gets one (`dead`, or
   * `failed` without retries), and a job pg-boss failed after its handler finished (its `finished`
   * row is of that attempt) is marked completed in pg-boss. Safe to run from many processes at once.
   */
  async reap(): Promise<ReapResult> {
    const { jids: reaped, ...rows } = await reap(this.#bound, { bossSchema: this.#bossSchema, maxHoldSeconds: this.#maxHoldSeconds });
    const { jids: recorded, ...boss } = await this.#reconciler.run(this.#bound, this.#tracked);
    this.#emitSettled([...reaped, ...recorded]);
    return { ...rows, ...boss };
  }

  /** Retry a `dead` or `failed` job through pg-boss; its row is `started` again for that attempt. See actions.ts. */
  async retry(jid: string, options: ActionOptions = {}): Promise<ActionResult> {
    return retryJob(await this.#actionDeps(), parseOptions(jidSchema, jid, 'retry (jid)'), options);
  }

  /** Cancel a `started` job through pg-boss; its row ends `dead` (`JOB_CANCELLED`). */
  async cancel(jid: string, options: ActionOptions = {}): Promise<ActionResult> {
    const result = await cancelJob(await this.#actionDeps(), parseOptions(jidSchema, jid, 'cancel (jid)'), options);
    if (result.changed) this.#emitSettled([result.jid]);
    return result;
  }

  /** Free the section of a `started` row whose holder is gone (what `reap()` does, for one row); refused while it is alive. */
  async release(jid: string, options: ActionOptions = {}): Promise<ActionResult> {
    const result = await releaseSection(await this.#actionDeps(), parseOptions(jidSchema, jid, 'release (jid)'), { ...options, maxHoldSeconds: this.#maxHoldSeconds });
    if (result.changed) this.#emitSettled([result.jid]);
    return result;
  }

  /**
   * Prometheus metrics of the log in a prom-client registry (the app's, or a new one): the whole
   * log's jobs in a window, sections held and stale, read at scrape time; this process's settled
   * jobs, durations, section waits, busy sections, reaper and pruner counts, from its events.
   * Needs prom-client (an optional peer). Calling it again with the same registry returns it as it
   * is. See docs/metrics.md.
   */
  metrics(options: MetricsOptions = {}): Promise<MetricsRegistry> {
    const key = options.registry;
    let registry = this.#registries.get(key);
    if (!registry) {
      const onError = (cause: unknown) => this.#warn({ code: 'METRICS_READ_FAILED', message: `metrics could not read the log: ${String(cause)}`, cause });
      const source = { stats: this.stats.bind(this), sectionGroups: (q: { bossSchema?: string }, o?: ReadOptions) => sectionGroups(this.#bound, q, o) };
      registry = createMetrics(source, options, { bossSchema: this.#bossSchema, onError }, this);
      registry.catch(() => this.#registries.delete(key));
      this.#registries.set(key, registry);
    }
    return registry;
  }

  async #actionDeps(): Promise<ActionDeps> {
    const { table } = await this.#open();
    return { prisma: this.#bound, boss: this.#boss, bossSchema: this.#bossSchema, sectionIndex: table.sectionIndex };
  }

  /**
   * `isSectionBusyError` for this log's table, whose section index the app may have named
   * otherwise. Before the table has been read (no work(), section() or query yet), the default name.
   */
  isSectionBusyError(error: unknown): boolean {
    return isSectionBusyError(error, this.#sectionIndex ?? undefined);
  }

  /** A query's user id of the wrong shape for the column is the caller's error, not the database's. */
  async #checkQueryUserId(query: { userId?: unknown } | undefined, where: string): Promise<void> {
    const id = query?.userId === undefined ? undefined : checkUserId(query.userId);
    if (id?.ok) this.#userId(id.value, (await this.#open()).table, where); // one that breaks the id rule: the query's own check names it
  }

  /** Stop this log's intervals (reaper, pruner, summaries). Workers are pg-boss's: stop them with `boss.stop()`. */
  stop(): void {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
  }
}

/**
 * Create the job log of an application from its own PrismaClient and PgBoss instance. Without
 * `boss` the log can be read and pruned but `work()` throws.
 */
export function createJobLog(options: JobLogOptions): JobLog {
  return new JobLog(options);
}
