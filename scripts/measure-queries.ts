#!/usr/bin/env node
// Query times and prune throughput on a big log:
//   node scripts/measure-queries.ts [--rows 1000000] [--runs 7] [--keep]
// Makes a new database on the server of DATABASE_URL (or an embedded server), migrates it,
// fills job_logs with make-rows, then times each query of the API (median of --runs, after one
// warm-up) and prints the index its plan reads. Last, prunes a third of the rows and reports
// rows per second. The database is dropped afterwards unless --keep.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog, type PrismaLike } from '../src/index.ts';
import { countDoomed, deleteBatch } from '../src/maintenance/pruner.ts';
import { timings } from './bench/stats.ts';
import { makeRows } from './lib/make-rows.ts';
import { databaseUrl, migrate, startEmbeddedServer, withClient } from './lib/database.ts';

const DAY = 86_400_000;

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '7' }, keep: { type: 'boolean', default: false } },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
if (!Number.isSafeInteger(rows) || rows < 1000 || !Number.isSafeInteger(runs) || runs < 1) {
  console.error('usage: node scripts/measure-queries.ts [--rows N ≥ 1000] [--runs N] [--keep]');
  process.exit(2);
}

const server = process.env.DATABASE_URL ? { url: process.env.DATABASE_URL, stop: async () => {} } : await startEmbeddedServer();
const name = `joblog_measure_${randomBytes(3).toString('hex')}`;
await withClient(server.url, (c) => c.query(`CREATE DATABASE ${name}`));
const url = databaseUrl(server.url, name);
const pool = new pg.Pool({ connectionString: url, max: 2 });
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });

try {
  await migrate(url);
  await pool.query(`CREATE SCHEMA pgboss; CREATE TABLE pgboss.job (name text, id uuid, state text, PRIMARY KEY (name, id))`);
  let started = performance.now();
  await makeRows(pool, { rows, onProgress: (n) => process.stderr.write(`\rmaking rows: ${n}/${rows}`) });
  process.stderr.write('\n');
  console.log(`made ${rows} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const { rows: [size] } = await pool.query(`SELECT pg_size_pretty(pg_total_relation_size('job_logs')) AS total`);
  console.log(`job_logs with its indexes: ${size.total}\n`);

  const seen: { sql: string; values: unknown[] }[] = [];
  const client: PrismaLike = {
    $queryRawUnsafe: (sql: string, ...v: unknown[]) => {
      seen.push({ sql, values: v });
      return prisma.$queryRawUnsafe(sql, ...v);
    },
  };
  const joblog = createJobLog({ prisma: client });
  const mid = await joblog.find({ until: new Date(Date.now() - 45 * DAY), limit: 1 });
  const now = Date.now();
  const cases: [string, () => Promise<unknown>][] = [
    ['find() first page (50)', () => joblog.find()],
    ['find() a page 45 days deep (cursor)', () => joblog.find({ cursor: mid.nextCursor })],
    ['find({ userId })', () => joblog.find({ userId: 'user-42' })],
    ["find({ states: ['dead'] })", () => joblog.find({ states: ['dead'] })],
    ["find({ states: ['failed','dead'], since: 7d })", () => joblog.find({ states: ['failed', 'dead'], since: new Date(now - 7 * DAY) })],
    ["find({ types: ['welcome_email'], since: 1d })", () => joblog.find({ types: ['welcome_email'], since: new Date(now - DAY) })],
    ["find({ group: 'reports' })", () => joblog.find({ group: 'reports' })],
    ['stats({ since: 24h })', () => joblog.stats({ since: new Date(now - DAY) })],
    ["stats({ since: 7d, bucket: '1 hour' })", () => joblog.stats({ since: new Date(now - 7 * DAY), bucket: '1 hour' })],
    ["stats({ since: 30d, bucket: '1 day' })", () => joblog.stats({ since: new Date(now - 30 * DAY), bucket: '1 day' })],
    ['sections()', () => joblog.sections()],
    ["prune({ olderThan: '60d', dryRun: true })", () => joblog.prune({ olderThan: '60d', dryRun: true })],
  ];
  console.log('| query | median ms | min ms | index read |');
  console.log('|---|---:|---:|---|');
  const timeCase = async (label: string, run: () => Promise<unknown>) => {
    const times = await timings(run, runs);
    const statement = seen.at(-1)!;
    console.log(`| \`${label}\` | ${times[Math.floor(times.length / 2)]!.toFixed(1)} | ${times[0]!.toFixed(1)} | ${await indexes(statement.sql, statement.values)} |`);
  };
  // stats() before any summary pass: every row of the window is read live.
  for (const [label, run] of cases) await timeCase(label.startsWith('stats') ? `${label}, no summaries` : label, run);
  started = performance.now();
  const pass = await joblog.summarise();
  const passSeconds = (performance.now() - started) / 1000;
  for (const [label, run] of cases.filter(([l]) => l.startsWith('stats'))) await timeCase(`${label}, summarised`, run);
  console.log(`\nfirst summary pass: ${pass.hours} hours and ${pass.days} days in ${passSeconds.toFixed(1)} s`);
  started = performance.now();
  const idle = await joblog.summarise();
  console.log(`a pass with nothing to do: ${((performance.now() - started)).toFixed(1)} ms (${JSON.stringify(idle)})`);

  const cutOff = new Date(now - 60 * DAY);
  const batchPlan = await indexes(deleteBatch, ['finished', cutOff, null, 5000]);
  const countPlan = await indexes(countDoomed, [['finished', 'skipped', 'failed', 'dead'], cutOff]);
  started = performance.now();
  let batches = 0;
  const result = await joblog.prune({ olderThan: cutOff, onProgress: (p) => (batches = p.batches) });
  const seconds = (performance.now() - started) / 1000;
  console.log(`\nprune({ olderThan: '60d', batchSize: 5000 }): deleted ${result.deleted} rows in ${batches} batches, ` +
    `${seconds.toFixed(2)} s = ${Math.round(result.deleted / seconds)} rows/s ` +
    `(${((seconds * 1000) / Math.max(1, batches)).toFixed(0)} ms per batch transaction)`);
  console.log(`prune batch reads: ${batchPlan}; dry-run count reads: ${countPlan}`);
} finally {
  await prisma.$disconnect();
  await pool.end();
  if (values.keep) console.log(`kept database ${url}`);
  else await withClient(server.url, (c) => c.query(`DROP DATABASE ${name} WITH (FORCE)`));
  await server.stop();
}

/** The scans of job_logs in the statement's plan, e.g. `Index Scan job_logs_started_id_idx`. */
async function indexes(sql: string, params: unknown[]): Promise<string> {
  const { rows: [row] } = await pool.query(`EXPLAIN (FORMAT JSON) ${sql}`, params);
  const out: string[] = [];
  const walk = (node: { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: unknown[] }) => {
    const index = node['Index Name'];
    if (node['Relation Name'] === 'job_logs' || index?.startsWith('job_logs')) out.push(index ? `${node['Node Type']} ${index}` : node['Node Type']);
    (node.Plans as (typeof node)[] | undefined)?.forEach(walk);
  };
  walk(row['QUERY PLAN'][0].Plan);
  return [...new Set(out)].filter((s) => s !== 'Delete' && s !== 'Bitmap Heap Scan').join(', ');
}
