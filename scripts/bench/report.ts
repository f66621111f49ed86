// The bench's outputs: a table on stdout, docs/benchmarks.md, and the one-line summary.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClaimLatency } from './claims.ts';
import type { MemoryMeasurement } from './memory.ts';
import type { PruneMeasurement } from './prune.ts';
import type { QueryTiming } from './queries.ts';
import type { ScalingPoint } from './scaling.ts';
import type { ThroughputResult } from './throughput.ts';
import { median } from './stats.ts';

export interface BenchResults {
  date: Date;
  /** 1-minute load averages at the start and at the end: other work on the machine shows here. */
  load: [number, number];
  quick: boolean;
  rows: number;
  machine: { cpus: string; memoryGB: number; postgres: string; node: string; server: string };
  seconds: number;
  throughput: ThroughputResult[];
  claims: ClaimLatency[];
  queries: QueryTiming[];
  prune?: PruneMeasurement;
  memory?: MemoryMeasurement;
  scaling: ScalingPoint[];
}

export const HEADLINE_QUERIES = ['in-progress scope', 'section holder', "a user's history page", 'stats, last hour'];

const f = (value: number | undefined, digits = 2) => (value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
const n = (value: number) => Math.round(value).toLocaleString('en-US');

export function machine(postgres: string, server: string): BenchResults['machine'] {
  return {
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
    memoryGB: Math.round(os.totalmem() / 1024 ** 3),
    postgres,
    node: process.version,
    server,
  };
}

export function summaryLine(r: BenchResults): string {
  const ratio = (batch: number) => r.throughput.find((t) => t.batchSize === batch)?.ratio;
  const contended = r.claims.filter((c) => c.contenders > 1);
  const claimP99 = contended.length ? Math.max(...contended.map((c) => c.p99)) : undefined;
  const headline = r.queries.filter((q) => HEADLINE_QUERIES.includes(q.name));
  const queryMs = headline.length ? Math.max(...headline.map((q) => q.median)) : undefined;
  return `bench: batch1=${f(ratio(1))} batch50=${f(ratio(50))} claim_p99_ms=${f(claimP99, 1)} query_ms=${f(queryMs, 1)}`;
}

/** The measurements as markdown tables (used for stdout and docs/benchmarks.md alike). */
export function tables(r: BenchResults): string {
  const out: string[] = [];
  if (r.throughput.length) {
    out.push('| worker | jobs per round | rounds | untracked jobs/s | pg-boss with includeMetadata + perJobResults, no log | tracked jobs/s | tracked / untracked |');
    out.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const t of r.throughput) {
      const perJob = t.perJob.length ? `${n(median(t.perJob))} (${f(median(t.perJob) / median(t.untracked))}×)` : 'not run (--quick)';
      out.push(`| batch ${t.batchSize} × localConcurrency ${t.localConcurrency} | ${n(t.jobs)} | ${t.rounds} | ${n(median(t.untracked))} | ${perJob} | ${n(median(t.tracked))} | **${f(t.ratio)}** |`);
    }
    out.push('');
    out.push('Jobs/s are medians of the rounds; each round drains a fresh backlog of no-op jobs, one per user (every tracked job takes a section, none collide). Per round, tracked / untracked:');
    out.push('');
    for (const t of r.throughput) {
      out.push(`- batch ${t.batchSize}: ${t.tracked.map((x, i) => f(x / t.untracked[i]!)).join(', ')}`);
    }
    out.push('');
  }
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

/** Each target of the performance issue next to what this run measured. */
export function targets(r: BenchResults): string {
  const rows: [string, string, string, boolean | undefined][] = [];
  for (const t of r.throughput) {
    rows.push([`tracked / untracked, batch ${t.batchSize}`, '≥ 0.85', f(t.ratio), t.ratio >= 0.85]);
  }
  for (const c of r.claims) {
    if (c.contenders > 1) rows.push([`claim p99, 16-way, ${c.scenario}`, '< 5 ms', `${f(c.p99)} ms`, c.p99 < 5]);
  }
  for (const q of r.queries) rows.push([`${q.name}, median`, '< 2 ms', `${f(q.median)} ms`, q.median < 2]);
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
- Load average (1 min) at the start and at the end: ${f(r.load[0])} and ${f(r.load[1])} (${os.cpus().length} CPUs; above that, other work shared the machine)
- Every ratio compares measurements of this one run: untracked and tracked rounds alternate.

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
