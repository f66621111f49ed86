// Query times with a big log: rows made by PostgreSQL (scripts/lib/make-rows.ts), then the
// library's own read functions timed (median, p99), each statement EXPLAINed for its index.
import { makeRows } from '../lib/make-rows.ts';
import { createJobLog, type JobLog, type PrismaLike } from '../../src/index.ts';
import type { BenchContext } from './context.ts';
import { percentile } from './stats.ts';

export interface QueryTiming {
  name: string;
  call: string;
  rows: number;
  median: number;
  p99: number;
  /** Indexes in the plan of the statement(s) the call ran. */
  indexes: string[];
  /** Node types that read the table without an index, if any. */
  seqScans: string[];
}

interface Captured {
  statement: string;
  values: unknown[];
}

/** A job log whose statements are recorded, so the bench can EXPLAIN exactly what ran. */
function capturingJobLog(ctx: BenchContext): { joblog: JobLog; last: Captured[] } {
  const last: Captured[] = [];
  const prisma: PrismaLike = {
    $queryRawUnsafe: (statement: string, ...values: unknown[]) => {
      last.push({ statement, values });
      return ctx.prisma.$queryRawUnsafe(statement, ...values);
    },
  };
  return { joblog: createJobLog({ prisma }), last };
}

/**
 * The log the queries run on: exactly `rows` rows made over 90 days. The throughput rounds' rows
 * go first: they all started in the last minutes and would turn "the last hour" into a window of
 * hundreds of thousands of rows.
 */
export async function fillLog(ctx: BenchContext, rows: number, onChunk: (made: number) => void): Promise<number> {
  await ctx.pool.query('TRUNCATE job_logs');
  return makeRows(ctx.pool, { rows, onProgress: onChunk });
}

export async function measureQueries(ctx: BenchContext, repeats: number, onDone: (label: string) => void): Promise<QueryTiming[]> {
  const { rows: [holder] } = await ctx.pool.query(
    `SELECT user_id, "group" FROM job_logs WHERE state = 'started' AND user_id LIKE 'holder-%' LIMIT 1`,
  );
  const busiest = { user_id: 'user-42' }; // make-rows spreads the rows evenly over its users
  const { joblog, last } = capturingJobLog(ctx);
  const hour = () => new Date(Date.now() - 3600_000);
  const day = () => new Date(Date.now() - 86_400_000);
  const month = () => new Date(Date.now() - 30 * 86_400_000);
  // `slow`: a call that reads a third of the log is timed 10 times, not `repeats` times.
  const cases: { name: string; call: string; run: () => Promise<unknown>; slow?: boolean }[] = [
    { name: 'in-progress scope', call: `inProgress({ userId: '${holder.user_id}' })`, run: () => joblog.inProgress({ userId: holder.user_id }) },
    { name: 'section holder', call: `holder('${holder.user_id}', '${holder.group}')`, run: () => joblog.holder(holder.user_id, holder.group) },
    { name: "a user's history page", call: `find({ userId: '${busiest.user_id}', limit: 50 })`, run: () => joblog.find({ userId: busiest.user_id, limit: 50 }) },
    { name: 'stats, last hour', call: 'stats({ since: 1 h ago })', run: () => joblog.stats({ since: hour() }) },
    { name: 'stats, last 24 h', call: 'stats({ since: 24 h ago })', run: () => joblog.stats({ since: day() }) },
    { name: 'stats, last 30 d', call: 'stats({ since: 30 d ago })', run: () => joblog.stats({ since: month() }), slow: true },
  ];
  const timings: QueryTiming[] = [];
  const time = async (c: (typeof cases)[number], name: string) => {
    for (let i = 0; i < (c.slow ? 2 : 5); i++) await c.run(); // warm the cache and the connection
    const samples: number[] = [];
    let result: unknown;
    for (let i = 0; i < (c.slow ? Math.min(repeats, 10) : repeats); i++) {
      last.length = 0;
      const started = performance.now();
      result = await c.run();
      samples.push(performance.now() - started);
    }
    const plans = await Promise.all(last.map((q) => explain(ctx, q)));
    timings.push({
      name,
      call: c.call,
      rows: rowCount(result),
      median: percentile(samples, 50),
      p99: percentile(samples, 99),
      indexes: [...new Set(plans.flatMap((p) => p.indexes))],
      seqScans: [...new Set(plans.flatMap((p) => p.seqScans))],
    });
    onDone(`query: ${name}`);
  };
  // stats() first as a log nobody summarises reads it, then as an app with `boss` does (its
  // summaries interval has run): the names without a suffix are the summarised figures.
  const isStats = (c: (typeof cases)[number]) => c.name.startsWith('stats');
  for (const c of cases.filter(isStats)) await time(c, `${c.name}, no summaries`);
  await joblog.summarise();
  for (const c of cases) await time(c, c.name);
  return timings;
}

function rowCount(result: unknown): number {
  if (Array.isArray(result)) return result.length;
  if (result && typeof result === 'object') {
    const r = result as { rows?: unknown[]; byType?: unknown[] };
    if (Array.isArray(r.rows)) return r.rows.length;
    if (Array.isArray(r.byType)) return r.byType.length;
    return 1;
  }
  return 0;
}

async function explain(ctx: BenchContext, q: Captured): Promise<{ indexes: string[]; seqScans: string[] }> {
  const [row] = await ctx.prisma.$queryRawUnsafe<{ 'QUERY PLAN': unknown }[]>(`EXPLAIN (FORMAT JSON) ${q.statement}`, ...q.values);
  const plan = (row!['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
  const indexes: string[] = [];
  const seqScans: string[] = [];
  const walk = (node: PlanNode) => {
    if (node['Index Name']) indexes.push(node['Index Name']);
    if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) seqScans.push(node['Relation Name']);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan);
  return { indexes, seqScans };
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}
