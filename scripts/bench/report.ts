// The bench's outputs: a table on stdout, docs/benchmarks.md, and the one-line summary.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClaimLatency } from './claims.ts';
import type { MemoryMeasurement } from './memory.ts';
import type { PruneMeasurement } from './prune.ts';
import type { QueryTiming } from './queries.ts';
import type { ScalingPoint } from './scaling.ts';
import type { ServerCpuScope } from './cpu.ts';
import { medianOf, MODE_LABELS, MODES, type Mode, rateRatio, type ThroughputResult } from './throughput.ts';

export interface BenchResults {
  date: Date;
  /** 1-minute load averages at the start and at the end: other work on the machine shows here. */
  load: [number, number];
  quick: boolean;
  rows: number;
  machine: { cpus: string; memoryGB: number; postgres: string; node: string; server: string };
  /** What the PostgreSQL CPU figures count. */
  cpuScope: ServerCpuScope;
  seconds: number;
  throughput: ThroughputResult[];
  claims: ClaimLatency[];
  queries: QueryTiming[];
  prune?: PruneMeasurement;
  memory?: MemoryMeasurement;
  scaling: ScalingPoint[];
}

export const HEADLINE_QUERIES = ['in-progress scope', 'section holder', "a user's history page", 'stats, last hour'];

export const CPU_SCOPE: Record<ServerCpuScope, string> = {
  server: 'every process of the bench\'s own PostgreSQL (backends, WAL writer, checkpointer, autovacuum)',
  backends: 'the backends of the bench database only: the server is shared, its other work and its background processes are left out',
};

const f = (value: number | undefined, digits = 2) => (value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
const n = (value: number) => (Number.isNaN(value) ? 'n/a' : Math.round(value).toLocaleString('en-US'));

export function machine(postgres: string, server: string): BenchResults['machine'] {
  return {
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
    memoryGB: Math.round(os.totalmem() / 1024 ** 3),
    postgres,
    node: process.version,
    server,
  };
}

const shape = (r: BenchResults, batch: number) => r.throughput.find((t) => t.batchSize === batch);
const ratioAt = (r: BenchResults, batch: number, mode: Mode, base: Mode) => {
  const t = shape(r, batch);
  return t ? rateRatio(t, mode, base) : undefined;
};

/** CPU per job that `mode` adds to untracked pg-boss: app (the worker process) and PostgreSQL. */
export function overhead(t: ThroughputResult, mode: Mode): { app: number; db: number } {
  return {
    app: medianOf(t, mode, 'appMicrosPerJob') - medianOf(t, 'untracked', 'appMicrosPerJob'),
    db: medianOf(t, mode, 'dbMicrosPerJob') - medianOf(t, 'untracked', 'dbMicrosPerJob'),
  };
}

const perJobCpu = (r: BenchResults, batch: number) => {
  const t = shape(r, batch);
  if (!t?.runs.perJob) return undefined;
  const o = overhead(t, 'perJob');
  return o.app + o.db;
};

const claimP99 = (r: BenchResults, contenders: number) =>
  r.claims.find((c) => c.scenario === 'one section' && c.contenders === contenders)?.p99;
const queryMedian = (r: BenchResults, name: string) => r.queries.find((q) => q.name === name)?.median;

export function summaryLine(r: BenchResults): string {
  const t50 = shape(r, 50);
  const headline = r.queries.filter((q) => HEADLINE_QUERIES.includes(q.name));
  const queryMs = headline.length ? Math.max(...headline.map((q) => q.median)) : undefined;
  return [
    'bench:',
    `batch1=${f(ratioAt(r, 1, 'tracked', 'untracked'))}`,
    `batch50=${f(ratioAt(r, 50, 'tracked', 'untracked'))}`,
    `batch50_nosection=${f(ratioAt(r, 50, 'trackedNoSection', 'untracked'))}`,
    `hand1=${f(ratioAt(r, 1, 'tracked', 'handWritten'))}`,
    `hand50=${f(ratioAt(r, 50, 'tracked', 'handWritten'))}`,
    `app_us_per_job50=${f(t50 && overhead(t50, 'tracked').app, 0)}`,
    `claim_p99_ms_4=${f(claimP99(r, 4), 1)}`,
    `stats24h_ms=${f(queryMedian(r, 'stats, last 24 h'), 1)}`,
    `query_ms=${f(queryMs, 1)}`,
    // Beyond issue 10's names: the same log with its writes on pg-boss's pool.
    `batch1_viaboss=${f(ratioAt(r, 1, 'trackedViaBoss', 'untracked'))}`,
    `batch50_viaboss=${f(ratioAt(r, 50, 'trackedViaBoss', 'untracked'))}`,
    `app_us_per_job50_viaboss=${f(t50 && overhead(t50, 'trackedViaBoss').app, 0)}`,
    // pg-boss's own price for includeMetadata + perJobResults: app + PostgreSQL CPU per job over untracked.
    `perjob_cpu_us1=${f(perJobCpu(r, 1), 0)}`,
    `perjob_cpu_us50=${f(perJobCpu(r, 50), 0)}`,
  ].join(' ');
}

const LOGS: Mode[] = ['tracked', 'trackedViaBoss', 'trackedNoSection', 'handWritten', 'handWrittenNoSection', 'perJob', 'metadataOnly', 'perJobResultsOnly'];

function throughputTables(r: BenchResults): string[] {
  const out: string[] = [];
  out.push('| worker | mode | jobs/s | × untracked | app µs/job | PostgreSQL µs/job | both µs/job |');
  out.push('|---|---|---:|---:|---:|---:|---:|');
  for (const t of r.throughput) {
    for (const mode of MODES) {
      if (!t.runs[mode]) continue;
      const app = medianOf(t, mode, 'appMicrosPerJob');
      const db = medianOf(t, mode, 'dbMicrosPerJob');
      out.push(`| batch ${t.batchSize} × ${t.localConcurrency} | ${MODE_LABELS[mode]} | ${n(medianOf(t, mode, 'jobsPerSecond'))} | ${f(rateRatio(t, mode, 'untracked'))} | ${n(app)} | ${n(db)} | ${n(app + db)} |`);
    }
  }
  out.push('');
  out.push(`${r.throughput[0]?.rounds ?? 0} rounds of ${r.throughput.map((t) => `${n(t.jobs)} (batch ${t.batchSize})`).join(' and ')} no-op jobs per mode, one user per job; every figure is the median of the rounds. CPU per job is CPU time over jobs drained: the worker process's \`process.cpuUsage()\`, and PostgreSQL's from \`/proc\` (${CPU_SCOPE[r.cpuScope]}).`);
  out.push('');
  out.push('| worker | the log | app µs/job over untracked | PostgreSQL µs/job over untracked | both |');
  out.push('|---|---|---:|---:|---:|');
  for (const t of r.throughput) {
    for (const mode of LOGS) {
      if (!t.runs[mode]) continue;
      const o = overhead(t, mode);
      out.push(`| batch ${t.batchSize} × ${t.localConcurrency} | ${MODE_LABELS[mode]} | ${n(o.app)} | ${n(o.db)} | **${n(o.app + o.db)}** |`);
    }
  }
  out.push('');
  out.push('| worker | tracked / untracked | tracked, no section / untracked | tracked / hand-written | tracked, no section / hand-written, no section |');
  out.push('|---|---:|---:|---:|---:|');
  for (const t of r.throughput) {
    out.push(`| batch ${t.batchSize} × ${t.localConcurrency} | **${f(rateRatio(t, 'tracked', 'untracked'))}** | **${f(rateRatio(t, 'trackedNoSection', 'untracked'))}** | **${f(rateRatio(t, 'tracked', 'handWritten'))}** | ${f(rateRatio(t, 'trackedNoSection', 'handWrittenNoSection'))} |`);
  }
  out.push('');
  out.push('Per round (rounds pair up in time), tracked / untracked:');
  out.push('');
  for (const t of r.throughput) {
    const tracked = t.runs.tracked ?? [];
    const untracked = t.runs.untracked ?? [];
    out.push(`- batch ${t.batchSize}: ${tracked.map((x, i) => f(x.jobsPerSecond / untracked[i]!.jobsPerSecond)).join(', ')}`);
  }
  out.push('');
  return out;
}

/** The measurements as markdown tables (used for stdout and docs/benchmarks.md alike). */
export function tables(r: BenchResults): string {
  const out: string[] = [];
  if (r.throughput.length) out.push(...throughputTables(r));
  if (r.claims.length) {
    out.push('| `joblog.section()` claims | connections | claims | claims/s | entered | busy | p50 ms | p99 ms |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of r.claims) out.push(`| ${c.scenario} | ${c.contenders} | ${n(c.claims)} | ${n(c.perSecond)} | ${n(c.won)} | ${n(c.busy)} | ${f(c.p50)} | **${f(c.p99)}** |`);
    out.push('');
  }
  if (r.queries.length) {
    out.push(`| query, ${n(r.rows)} rows in the log | call | rows returned | median ms | p99 ms | index used (EXPLAIN) |`);
    out.push('|---|---|---:|---:|---:|---|');
    for (const q of r.queries) {
      const plan = [...q.indexes, ...q.seqScans.map((t) => `seq scan of ${t}`)].join(', ') || '—';
      out.push(`| ${q.name} | \`${q.call}\` | ${n(q.rows)} | **${f(q.median)}** | ${f(q.p99)} | ${plan} |`);
    }
    out.push('');
  }
  if (r.prune) {
    const p = r.prune;
    out.push('| prune while claiming | rows deleted | batches | seconds | rows/s | claims meanwhile | claim p50 ms | claim p99 ms |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    out.push(`| \`joblog.prune\` | ${n(p.deleted)} | ${n(p.batches)} | ${f(p.seconds, 1)} | **${n(p.rowsPerSecond)}** | ${n(p.claimsDuring)} | ${f(p.claimP50)} | ${f(p.claimP99)} |`);
    out.push('');
  }
  if (r.memory) {
    const m = r.memory;
    out.push('| memory, tracked batch 50 × 4 | jobs | seconds | heap before MB | half-way MB | after MB | peak MB |');
    out.push('|---|---:|---:|---:|---:|---:|---:|');
    out.push(`| after \`gc()\` | ${n(m.jobs)} | ${f(m.seconds, 1)} | ${f(m.heapBeforeMB, 1)} | ${f(m.heapHalfMB, 1)} | **${f(m.heapAfterMB, 1)}** | ${f(m.heapPeakMB, 1)} |`);
    out.push('');
  }
  if (r.scaling.length) {
    out.push('| worker processes (batch 50 × 4 each) | untracked jobs/s | tracked jobs/s | tracked / untracked |');
    out.push('|---:|---:|---:|---:|');
    for (const s of r.scaling) out.push(`| ${s.processes} | ${n(s.untracked)} | ${n(s.tracked)} | ${f(s.ratio)} |`);
    out.push('');
  }
  return out.join('\n');
}

type Target = [what: string, wanted: string, measured: string, met: boolean | undefined];

/** Each target of the performance issue next to what this run measured. */
export function targets(r: BenchResults): string {
  const rows: Target[] = [];
  const ratio = (what: string, batch: number, mode: Mode, base: Mode, atLeast: number) => {
    const value = ratioAt(r, batch, mode, base);
    if (value !== undefined && !Number.isNaN(value)) rows.push([what, `≥ ${atLeast}`, f(value), value >= atLeast]);
  };
  ratio('tracked / hand-written, batch 1', 1, 'tracked', 'handWritten', 1.3);
  ratio('tracked / hand-written, batch 50', 50, 'tracked', 'handWritten', 5);
  ratio('tracked / untracked, batch 1, jobs with a section', 1, 'tracked', 'untracked', 0.75);
  ratio('tracked / untracked, batch 50, jobs with a section', 50, 'tracked', 'untracked', 0.7);
  ratio('tracked / untracked, batch 50, jobs without a section', 50, 'trackedNoSection', 'untracked', 0.9);
  const t50 = shape(r, 50);
  if (t50?.runs.tracked) {
    const app = overhead(t50, 'tracked').app;
    rows.push(["tracker's own app CPU per job, batch 50", '≤ 15 µs', `${f(app, 0)} µs`, app <= 15]);
  }
  for (const c of r.claims) {
    if (c.scenario !== 'one connection') rows.push([`claim p99, ${c.contenders} on ${c.scenario}`, '< 5 ms', `${f(c.p99)} ms`, c.p99 < 5]);
  }
  const limits: Record<string, number> = { 'stats, last 24 h': 5, 'stats, last 30 d': 50 };
  // The live figures ("…, no summaries") are the baseline the summaries are judged against, not targets.
  for (const q of r.queries.filter((x) => !x.name.endsWith(', no summaries'))) {
    const limit = limits[q.name] ?? 2;
    rows.push([`${q.name}, median, ${n(r.rows)} rows`, `< ${limit} ms`, `${f(q.median)} ms`, q.median < limit]);
  }
  if (r.prune) rows.push(['prune while claiming', '≥ 50,000 rows/s', `${n(r.prune.rowsPerSecond)} rows/s`, r.prune.rowsPerSecond >= 50_000]);
  if (r.memory) {
    const growth = r.memory.heapAfterMB - r.memory.heapHalfMB;
    rows.push([`heap growth over the second ${n(r.memory.jobs / 2)} jobs`, 'constant (< 1 MB)', `${growth >= 0 ? '+' : ''}${f(growth, 1)} MB`, growth < 1]);
  }
  const out = ['| target | wanted | measured | met |', '|---|---|---|---|'];
  for (const [what, wanted, measured, met] of rows) out.push(`| ${what} | ${wanted} | ${measured} | ${met ? 'yes' : '**no**'} |`);
  return out.join('\n');
}

export async function writeReport(r: BenchResults, notes: string): Promise<string> {
  const file = path.resolve(import.meta.dirname, '..', '..', 'docs', 'benchmarks.md');
  const m = r.machine;
  const body = `# Benchmarks

Written by \`npm run bench${r.quick ? ' -- --quick' : ''}\` on ${r.date.toISOString().slice(0, 16).replace('T', ' ')} UTC
(${f(r.seconds / 60, 1)} min). Do not edit by hand: run the bench again.

- Machine: ${m.cpus}, ${m.memoryGB} GB RAM; Node ${m.node}; ${m.postgres}
- Database: ${m.server}, a database created for the run and dropped after it
- PostgreSQL CPU counts ${CPU_SCOPE[r.cpuScope]}
- Load average (1 min) at the start and at the end: ${f(r.load[0])} and ${f(r.load[1])} (${os.cpus().length} CPUs; above that, other work shared the machine)
- Every ratio compares measurements of this one run: the modes' rounds alternate.

## Targets

${targets(r)}

## Results

${tables(r)}
\`\`\`
${summaryLine(r)}
\`\`\`

${notes}`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, body);
  return file;
}
