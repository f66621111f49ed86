#!/usr/bin/env node
// What a Prometheus scrape of joblog.metrics() costs on a big log:
//   node scripts/measure-metrics.ts [--rows 10000,1000000,10000000] [--runs 15]
// For each size: a new database on the server of DATABASE_URL (or an embedded server), migrated
// and filled by make-rows (90 days of history, a few sections held), then the median time of one
// scrape (registry.metrics(), cacheMs 0: every scrape reads the log) before and after the first
// summary pass, and the statements one scrape runs. Each database is dropped afterwards.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog } from '../src/index.ts';
import { timings } from './bench/stats.ts';
import { makeRows } from './lib/make-rows.ts';
import { databaseUrl, migrate, startEmbeddedServer, withClient } from './lib/database.ts';

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '10000,1000000,10000000' }, runs: { type: 'string', default: '15' } },
});
const sizes = values.rows.split(',').map(Number);
const runs = Number(values.runs);
if (sizes.some((n) => !Number.isSafeInteger(n) || n < 1000) || !Number.isSafeInteger(runs) || runs < 1) {
  console.error('usage: node scripts/measure-metrics.ts [--rows N,N,… each ≥ 1000] [--runs N]');
  process.exit(2);
}

const server = process.env.DATABASE_URL ? { url: process.env.DATABASE_URL, stop: async () => {} } : await startEmbeddedServer();
console.log('| rows | scrape, no summaries (median / max ms) | scrape, summarised (median / max ms) | statements per scrape | exposition bytes |');
console.log('|---:|---:|---:|---:|---:|');
try {
  for (const rows of sizes) console.log(await measure(rows));
} finally {
  await server.stop();
}

async function measure(rows: number): Promise<string> {
  const name = `joblog_metrics_${randomBytes(3).toString('hex')}`;
  await withClient(server.url, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = databaseUrl(server.url, name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }), log: [{ emit: 'event', level: 'query' }] });
  let statements = 0;
  const shown = new Set<string>();
  prisma.$on('query', (e) => {
    if (/^\s*(SET|RESET|BEGIN|COMMIT|ROLLBACK)\b/i.test(e.query)) return;
    statements++;
    if (process.env.SHOW && !shown.has(e.query)) shown.add(e.query) && console.log(e.query);
  });
  try {
    await migrate(url);
    await pool.query(`CREATE SCHEMA pgboss; CREATE TABLE pgboss.job (name text, id uuid, state text, PRIMARY KEY (name, id))`);
    await makeRows(pool, { rows, onProgress: (n) => process.stderr.write(`\r${rows} rows: made ${n}`) });
    process.stderr.write('\n');
    await pool.query('VACUUM ANALYZE job_logs');
    const joblog = createJobLog({ prisma });
    joblog.on('warning', (w) => console.error(w.message));
    const registry = await joblog.metrics({ cacheMs: 0 });
    const live = await time(() => registry.metrics());
    await joblog.summarise();
    const summarised = await time(() => registry.metrics());
    statements = 0;
    const text = await registry.metrics();
    if (process.env.SHOW) console.log(text);
    if (!/^joblog_log_up 1$/m.test(text)) throw new Error('the scrape did not read the log (log_up is not 1)');
    return `| ${rows.toLocaleString('en')} | ${live} | ${summarised} | ${statements} | ${Buffer.byteLength(text)} |`;
  } finally {
    await prisma.$disconnect();
    await pool.end();
    await withClient(server.url, (c) => c.query(`DROP DATABASE ${name} WITH (FORCE)`));
  }
}

async function time(scrape: () => Promise<unknown>): Promise<string> {
  const times = await timings(scrape, runs);
  return `${times[Math.floor(times.length / 2)]!.toFixed(1)} / ${times.at(-1)!.toFixed(1)}`;
}
