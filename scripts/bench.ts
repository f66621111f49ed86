// `npm run bench`: what tracking costs next to plain pg-boss, and how the log behaves at scale,
// all measured in this one run (docs/benchmarks.md is rewritten from it).
//
//   npm run bench                    full run (≈ 10 min): 1M rows, 100,000-job memory run
//   npm run bench -- --quick         under two minutes: fewer rounds, jobs and rows, no
//                                    scaling part; docs/benchmarks.md is left alone
//   npm run bench -- --rows 10000000 the query and prune measurements on 10M rows
//
// DATABASE_URL: a database is created on that server for the run and dropped after it;
// unset: an embedded PostgreSQL is started for the run (preferred: its CPU is all the bench's).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BenchArgs, parseBenchArgs } from './bench/args.ts';
import { CLAIM_SCENARIOS, measureClaims } from './bench/claims.ts';
import { openContext } from './bench/context.ts';
import { openBenchDatabase } from './bench/database.ts';
import { measureMemory } from './bench/memory.ts';
import { progress } from './bench/progress.ts';
import { measurePrune } from './bench/prune.ts';
import { fillLog, measureQueries } from './bench/queries.ts';
import { type BenchResults, CPU_SCOPE, machine, summaryLine, tables, targets, writeReport } from './bench/report.ts';
import { measureScaling } from './bench/scaling.ts';
import { measureThroughput, type Mode, warmUp } from './bench/throughput.ts';
import { spawnWorker } from './bench/worker-host.ts';

// The hand-written log without a section costs what it costs with one (the same row work): the
// full run measures it, the quick run leaves it out to stay under two minutes.
const QUICK_MODES: Mode[] = ['untracked', 'perJob', 'tracked', 'trackedViaBoss', 'trackedNoSection', 'handWritten'];

/** How much of everything: --quick trades precision for a run under two minutes. */
function plan(args: BenchArgs) {
  const quick = args.quick;
  return {
    rounds: quick ? 3 : 5,
    modes: args.modes ?? (quick ? QUICK_MODES : [...QUICK_MODES, 'handWrittenNoSection', 'metadataOnly', 'perJobResultsOnly'] satisfies Mode[]),
    batch1Jobs: quick ? 400 : 2000,
    batch50Jobs: quick ? 3000 : 15_000,
    claims: quick ? 300 : 4800,
    rows: quick ? Math.min(args.rows, 100_000) : args.rows,
    queryRepeats: quick ? 50 : 200,
    // make-rows spreads start times over 90 days: '60d' prunes about a third of them
    pruneOlderThan: '60d',
    memoryJobs: quick ? 4000 : 100_000,
    scaling: quick ? [] : [1, 2, 4],
    scalingJobs: quick ? 5_000 : 40_000,
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2));
  const p = plan(args);
  const on = (part: BenchArgs['only'][number]) => args.only.includes(part);
  const steps = (on('throughput') ? p.rounds * 2 * p.modes.length + 1 : 0) + (on('claims') ? CLAIM_SCENARIOS : 0) + (on('queries') ? 6 : 0) + (on('queries') || on('prune') ? 1 : 0)
    + (on('prune') ? 1 : 0) + (on('memory') ? 1 : 0) + (on('scaling') ? p.scaling.length * 2 : 0);
  const bar = progress(steps + 1);
  const began = performance.now();

  bar.step('database');
  const db = await openBenchDatabase();
  const ctx = await openContext(db.url, db.embedded);
  const results: BenchResults = {
    date: new Date(),
    load: [os.loadavg()[0]!, 0],
    quick: args.quick,
    rows: p.rows,
    machine: machine(await serverVersion(ctx.pool), db.embedded ? 'embedded PostgreSQL (fsync off)' : 'the DATABASE_URL server'),
    cpuScope: ctx.serverCpu.scope,
    seconds: 0,
    throughput: [],
    claims: [],
    queries: [],
    scaling: [],
  };
  try {
    if (on('throughput')) {
      const step = (label: string) => bar.step(label);
      const worker = await spawnWorker(ctx.url, (w) => ctx.warnings.push(w));
      try {
        await warmUp(ctx, worker, p.modes);
        bar.step('warm-up');
        results.throughput.push(await measureThroughput(ctx, worker, { batchSize: 1, localConcurrency: 8, jobs: p.batch1Jobs }, p.rounds, p.modes, step));
        results.throughput.push(await measureThroughput(ctx, worker, { batchSize: 50, localConcurrency: 4, jobs: p.batch50Jobs }, p.rounds, p.modes, step));
      } finally {
        await worker.close();
      }
    }
    if (on('claims')) results.claims = await measureClaims(ctx, p.claims, (l) => bar.step(l));
    if (on('queries') || on('prune')) {
      await fillLog(ctx, p.rows, (made) => bar.note(`making rows: ${made.toLocaleString('en-US')} of ${p.rows.toLocaleString('en-US')}`));
      bar.step('rows made');
    }
    if (on('queries')) results.queries = await measureQueries(ctx, p.queryRepeats, (l) => bar.step(l));
    if (on('prune')) {
      results.prune = await measurePrune(ctx, p.pruneOlderThan, 5000);
      bar.step('prune');
    }
    if (on('memory')) {
      results.memory = await measureMemory(ctx, p.memoryJobs, (done) => bar.note(`memory run: ${done.toLocaleString('en-US')} jobs`));
      bar.step('memory');
    }
    if (on('scaling')) {
      results.scaling = await measureScaling(ctx, p.scaling, { batchSize: 50, localConcurrency: 4, jobs: p.scalingJobs }, (l) => bar.step(l));
    }
  } finally {
    bar.done();
    await ctx.close();
    await db.stop();
  }
  results.seconds = (performance.now() - began) / 1000;
  results.load[1] = os.loadavg()[0]!;
  if (ctx.warnings.length) console.error(`warnings during the run (${ctx.warnings.length}), first: ${ctx.warnings[0]}`);
  if (!db.embedded) console.error(`DATABASE_URL is a shared server: PostgreSQL CPU counts ${CPU_SCOPE.backends} (unset DATABASE_URL for a server of the bench's own)`);

  console.log(tables(results));
  console.log(targets(results));
  if (args.write) {
    const notes = await fs.readFile(path.join(import.meta.dirname, 'bench', 'notes.md'), 'utf8');
    const file = await writeReport(results, notes);
    console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
  }
  console.log(summaryLine(results));
}

async function serverVersion(pool: import('pg').Pool): Promise<string> {
  const { rows } = await pool.query('SHOW server_version');
  return `PostgreSQL ${rows[0].server_version}`;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
