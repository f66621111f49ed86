// Prometheus metrics of the job log, through prom-client (an optional peer) in the app's registry.
// Two kinds: what the whole log holds (all processes), read from the database at scrape time in
// two cheap statements (stats() of a window, answered from the summaries, and sections()); and
// what this process's workers did, counted from the log's events.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { durationSchema } from './duration.ts';
import { JobLogError } from './errors.ts';
import { parseOptions } from './options.ts';
import { readOptionsSchema } from './reads.ts';
import type { SectionGroup } from './queries.ts';
import type { BusyEvent, JobLogWarning } from './tracker.ts';
import type { DurationInput, HeldSection, JobLogRow, PruneResult, ReadOptions, ReapResult, SectionsQuery, StatsQuery, StatsResult } from './types.ts';

/** What the database-wide gauges read through (a `JobLog`'s queries). */
export interface MetricsSource {
  stats(query: StatsQuery, options?: ReadOptions): Promise<StatsResult>;
  sectionGroups(query: { bossSchema?: string }, options?: ReadOptions): Promise<SectionGroup[]>;
}

/** A source for a job log that only lists its sections (the dashboard's): counted here. */
export function listingSource(log: { stats: MetricsSource['stats']; sections(query?: SectionsQuery, options?: ReadOptions): Promise<HeldSection[]> }): MetricsSource {
  return {
    stats: (query, options) => log.stats(query, options),
    async sectionGroups(query, options) {
      const groups = new Map<string, SectionGroup>();
      for (const x of await log.sections(query, options)) {
        const g = groups.get(x.group) ?? { group: x.group, held: 0, stale: 0, maxHeldMs: 0 };
        groups.set(x.group, { group: x.group, held: g.held + 1, stale: g.stale + (x.stale ? 1 : 0), maxHeldMs: Math.max(g.maxHeldMs, x.heldForMs) });
      }
      return [...groups.values()];
    },
  };
}

/** The events the process's counters and histograms are built from (a `JobLog` has them). */
export interface MetricsEvents {
  on(event: 'settled', listener: (row: JobLogRow) => void): unknown;
  on(event: 'busy', listener: (event: BusyEvent) => void): unknown;
  on(event: 'reaped', listener: (result: ReapResult) => void): unknown;
  on(event: 'pruned', listener: (result: PruneResult) => void): unknown;
  on(event: 'warning', listener: (warning: JobLogWarning) => void): unknown;
}

/**
 * What the log needs of a prom-client `Registry` (prom-client's own is one). Structural, so the
 * library's types do not need prom-client installed.
 */
export interface MetricsRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
  registerMetric(metric: any): void;
  getSingleMetric(name: string): unknown;
}

/** Options of `joblog.metrics()`. */
export interface MetricsOptions {
  /** The app's prom-client `Registry` (e.g. prom-client's global `register`). Default a new one (returned). */
  registry?: MetricsRegistry;
  /** Prefix of every metric name. Default `joblog_`. */
  prefix?: string;
  /** The window of the `*_window_*` gauges: jobs started in the last … Default `'24h'`. */
  window?: DurationInput;
  /** Bucket bounds (seconds) of the duration and wait histograms. */
  buckets?: number[];
  /** Each statement of a scrape is cancelled after this long (the gauges then read `log_up 0`). Default 5000. */
  statementTimeoutMs?: number;
  /** Scrapes within this long of each other share one read of the database. Default 1000. */
  cacheMs?: number;
}

/** From a 10 ms no-op to an hour-long import: the spread of background jobs. */
const DEFAULT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

const metricsOptionsSchema = z.strictObject({
  registry: z.custom<MetricsRegistry>(
    (v) => typeof v === 'object' && v !== null && ['registerMetric', 'getSingleMetric', 'metrics'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
    { message: "expected a prom-client Registry (new Registry(), or prom-client's register)" },
  ).optional(),
  prefix: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'expected a Prometheus metric name prefix such as joblog_ (letters, digits, _ and :)').default('joblog_'),
  window: durationSchema.default(86_400_000),
  buckets: z.array(z.number().positive().finite()).min(1).refine((b) => b.every((x, i) => i === 0 || x > b[i - 1]!), 'expected increasing bounds').default(DEFAULT_BUCKETS),
  statementTimeoutMs: readOptionsSchema.shape.statementTimeoutMs.unwrap().default(5000),
  cacheMs: z.int().min(0).max(3_600_000).default(1000),
});

type Parsed = z.output<typeof metricsOptionsSchema>;

/** What only the caller knows: pg-boss's schema, and where a failed read is reported. */
export interface MetricsContext {
  bossSchema?: string;
  onError: (error: unknown) => void;
}

type PromClient = typeof import('prom-client');

async function loadPromClient(): Promise<PromClient> {
  try {
    return await import('prom-client');
  } catch (cause) {
    throw new JobLogError('MISSING_PEER', 'metrics need prom-client, an optional peer dependency: npm install prom-client', { cause });
  }
}

/**
 * Register the job log's metrics in a prom-client registry and return it. With `events` (a
 * `JobLog`), this process's counters and histograms too. Call once per registry.
 */
export async function createMetrics(source: MetricsSource, options: MetricsOptions, context: MetricsContext, events?: MetricsEvents): Promise<MetricsRegistry> {
  const parsed = parseOptions(metricsOptionsSchema, options, 'metrics');
  const prom = await loadPromClient();
  const given = parsed.registry ?? new prom.Registry();
  // The app's registry may come from its own copy of prom-client: metrics only need it to list them.
  const registry = given as unknown as Registry;
  if (registry.getSingleMetric(`${parsed.prefix}log_up`)) {
    throw new JobLogError('METRICS_REGISTERED', `this registry already has the job log's metrics (${parsed.prefix}*): call metrics() once per registry, or give another prefix`);
  }
  registerLogGauges(prom, registry, parsed, snapshots(source, parsed, context));
  if (events) registerProcessMetrics(prom, registry, parsed, events);
  return given;
}

type Snapshot = { ok: true; stats: StatsResult; sections: SectionGroup[]; seconds: number } | { ok: false; seconds: number };

/**
 * One read of the log per scrape, shared by every gauge of it (prom-client collects them at once),
 * and by the scrapes that come within `cacheMs` of its end.
 */
function snapshots(source: MetricsSource, parsed: Parsed, context: MetricsContext): () => Promise<Snapshot> {
  let cached: { endedAt: number | null; snapshot: Promise<Snapshot> } | undefined;
  const read = async (): Promise<Snapshot> => {
    const started = performance.now();
    const reads = { statementTimeoutMs: parsed.statementTimeoutMs };
    try {
      const until = new Date();
      // One after the other: a scrape holds at most one connection of the app's pool.
      const stats = await source.stats({ since: new Date(until.getTime() - parsed.window), until }, reads);
      const sections = await source.sectionGroups(context.bossSchema ? { bossSchema: context.bossSchema } : {}, reads);
      return { ok: true, stats, sections, seconds: (performance.now() - started) / 1000 };
    } catch (error) {
      context.onError(error);
      return { ok: false, seconds: (performance.now() - started) / 1000 };
    }
  };
  return () => {
    const fresh = cached && (cached.endedAt === null || performance.now() - cached.endedAt <= parsed.cacheMs);
    if (!fresh) {
      const entry: { endedAt: number | null; snapshot: Promise<Snapshot> } = { endedAt: null, snapshot: read() };
      void entry.snapshot.then(() => (entry.endedAt = performance.now()));
      cached = entry;
    }
    return cached!.snapshot;
  };
}

/** The gauges of the whole log: emptied, not left stale, when the log cannot be read. */
function registerLogGauges(prom: PromClient, registry: Registry, parsed: Parsed, snapshot: () => Promise<Snapshot>): void {
  const p = parsed.prefix;
  const window = `${parsed.window / 3_600_000} h`;
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>, s: Snapshot & { ok: true }) => void) =>
    new prom.Gauge<L>({
      name: `${p}${name}`, help, labelNames, registers: [registry],
      async collect() {
        const s = await snapshot();
        this.reset();
        if (s.ok) fill(this, s);
      },
    });
  gauge('window_jobs', `Jobs of the log (all processes) started in the last ${window}, by job type and state`, ['job_type', 'state'], (g, s) => {
    for (const t of s.stats.byType) for (const [state, n] of Object.entries(t.counts)) g.set({ job_type: t.jobType, state }, n);
  });
  gauge('window_failure_ratio', `(failed + dead) / (finished + failed + dead) of jobs started in the last ${window}`, ['job_type'], (g, s) => {
    for (const t of s.stats.byType) if (t.failureRate !== null) g.set({ job_type: t.jobType }, t.failureRate);
  });
  gauge('window_duration_seconds', `Duration quantiles (0.5, 0.95; 1 is the max) of settled jobs started in the last ${window}`, ['job_type', 'quantile'], (g, s) => {
    for (const t of s.stats.byType) {
      for (const [quantile, ms] of [['0.5', t.p50Ms], ['0.95', t.p95Ms], ['1', t.maxMs]] as const) {
        if (ms !== null) g.set({ job_type: t.jobType, quantile }, ms / 1000);
      }
    }
  });
  gauge('sections_held', 'Critical sections held now, by group', ['group'], (g, s) => {
    for (const x of s.sections) g.set({ group: x.group }, x.held);
  });
  gauge('sections_stale', 'Sections held now by a holder that looks dead (the reaper frees them)', ['group'], (g, s) => {
    for (const x of s.sections) g.set({ group: x.group }, x.stale);
  });
  gauge('section_held_max_seconds', 'How long the longest-held section of each group has been held', ['group'], (g, s) => {
    for (const x of s.sections) g.set({ group: x.group }, x.maxHeldMs / 1000);
  });
  new prom.Gauge({
    name: `${p}log_up`, help: '1 when the last scrape read the log; 0 when it could not (the window and section gauges are then empty)', registers: [registry],
    async collect() { this.set((await snapshot()).ok ? 1 : 0); },
  });
  new prom.Gauge({
    name: `${p}scrape_read_seconds`, help: 'How long the last scrape\'s reads of the log took', registers: [registry],
    async collect() { this.set((await snapshot()).seconds); },
  });
}

/** This process's counters and histograms, from the log's events (users are never labels). */
function registerProcessMetrics(prom: PromClient, registry: Registry, parsed: Parsed, events: MetricsEvents): void {
  const p = parsed.prefix;
  const registers = [registry];
  const settled: Counter<'job_type' | 'state'> = new prom.Counter({
    name: `${p}jobs_settled_total`, help: 'Rows this process saw reach a terminal state (its workers\', its reaper\'s), by job type and state', labelNames: ['job_type', 'state'], registers,
  });
  const duration: Histogram<'job_type' | 'state'> = new prom.Histogram({
    name: `${p}job_duration_seconds`, help: 'Duration of the last attempt of jobs settled by this process, by job type and terminal state', labelNames: ['job_type', 'state'], buckets: parsed.buckets, registers,
  });
  const waited: Histogram<'job_type' | 'group'> = new prom.Histogram({
    name: `${p}section_wait_seconds`, help: 'How long settled jobs waited for their section (onBusy: { wait })', labelNames: ['job_type', 'group'], buckets: parsed.buckets, registers,
  });
  const busy: Counter<'job_type' | 'group' | 'policy'> = new prom.Counter({
    name: `${p}section_busy_total`, help: 'Times a job of this process found its section held, by policy', labelNames: ['job_type', 'group', 'policy'], registers,
  });
  const reaped: Counter<'outcome'> = new prom.Counter({
    name: `${p}reaper_rows_total`, help: 'Rows the reaper interval of this process settled or wrote, by outcome', labelNames: ['outcome'], registers,
  });
  const pruned: Counter = new prom.Counter({ name: `${p}pruned_rows_total`, help: 'Rows the prune interval of this process deleted', registers });
  const warnings: Counter<'code'> = new prom.Counter({
    name: `${p}warnings_total`, help: 'Warnings of this process\'s log (LOG_WRITE_FAILED, STALE_ATTEMPT, …), by code', labelNames: ['code'], registers,
  });

  events.on('settled', (row) => {
    const labels = { job_type: row.jobType, state: row.state };
    settled.inc(labels);
    if (row.durationMs !== null) duration.observe(labels, row.durationMs / 1000);
    if (row.waitedMs !== null && row.group !== null) waited.observe({ job_type: row.jobType, group: row.group }, row.waitedMs / 1000);
  });
  events.on('busy', (e) => busy.inc({ job_type: e.type, group: e.group, policy: e.policy }));
  events.on('reaped', (r) => {
    for (const outcome of ['finished', 'dead', 'recorded', 'completed'] as const) if (r[outcome] > 0) reaped.inc({ outcome }, r[outcome]);
  });
  events.on('pruned', (r) => pruned.inc(r.deleted));
  events.on('warning', (w) => warnings.inc({ code: w.code }));
}
