#!/usr/bin/env node
// What a burst of heavy dashboard pages does to the app that mounts the dashboard:
//   node scripts/dashboard-load.ts [--rows 400000] [--requests 24] [--src DIR …] [--keep]
// Makes a database on the server of DATABASE_URL (or an embedded server), migrates it, fills it
// with --rows rows over 30 days, and serves the dashboard on the same PrismaClient the "app"
// uses. Then: the app's `SELECT 1` latency idle; the same while --requests concurrent
// `/?window=30d` pages load, with each page's status and time; and how many statements are still
// running 300 ms after 12 clients gave up on their page after 60 ms. Each --src DIR runs the
// same on the same rows with createDashboard and createJobLog from DIR/index.ts (default this
// package's src/), e.g. `git archive main src | tar -x -C /tmp/old` to compare with an older one.
// The database is dropped afterwards unless --keep.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { makeRows } from './lib/make-rows.ts';
import { databaseUrl, migrate, startEmbeddedServer, withClient } from './lib/database.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '400000' },
    requests: { type: 'string', default: '24' },
    src: { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const requests = Number(values.requests);
if (!Number.isSafeInteger(rows) || rows < 1000 || !Number.isSafeInteger(requests) || requests < 1) {
  console.error('usage: node scripts/dashboard-load.ts [--rows N ≥ 1000] [--requests N] [--src DIR] [--keep]');
  process.exit(2);
}
const sources = values.src ?? [path.join(import.meta.dirname, '..', 'src')];

const TOKEN = randomBytes(18).toString('base64url');
const server = process.env.DATABASE_URL ? { url: process.env.DATABASE_URL, stop: async () => {} } : await startEmbeddedServer();
const name = `joblog_load_${randomBytes(3).toString('hex')}`;
await withClient(server.url, (c) => c.query(`CREATE DATABASE ${name}`));
const url = databaseUrl(server.url, name);
const pool = new pg.Pool({ connectionString: url, max: 2 });
// The app's client: its pool (pg's default, 10 connections) is the one the dashboard reads through.
let prisma: PrismaClient;

const ms = (t0: number) => performance.now() - t0;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
const figures = (xs: number[]) => `median ${quantile(xs, 0.5).toFixed(1)} ms, p95 ${quantile(xs, 0.95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (${xs.length} samples)`;

async function appSelect1(): Promise<number> {
  const t0 = performance.now();
  await prisma.$queryRawUnsafe('SELECT 1');
  return ms(t0);
}

/** The app's SELECT 1, every 50 ms, until `done` settles. */
async function sampleWhile(done: Promise<unknown>): Promise<number[]> {
  let over = false;
  void done.finally(() => (over = true));
  const out: number[] = [];
  while (!over) {
    out.push(await appSelect1());
    await sleep(50);
  }
  return out;
}

async function runningStatements(): Promise<number> {
  const { rows: [r] } = await pool.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() AND query ILIKE '%job_logs%'`,
  );
  return r.n;
}

function byStatus(pages: { status: number; ms: number }[]): string {
  const groups = new Map<number, number[]>();
  for (const p of pages) groups.set(p.status, [...(groups.get(p.status) ?? []), p.ms]);
  return [...groups].map(([status, t]) => `${t.length} × ${status} (${Math.min(...t).toFixed(0)}–${Math.max(...t).toFixed(0)} ms)`).join(', ');
}

async function measure(src: string): Promise<void> {
  const lib = await import(path.resolve(src, 'index.ts'));
  prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
  const served = await lib.serve({ handler: lib.createDashboard({ joblog: lib.createJobLog({ prisma }), token: TOKEN }), port: 0 });
  try {
    await load(served.url);
  } finally {
    await served.close();
    await prisma.$disconnect();
  }
}

async function load(base: string): Promise<void> {
  const page = (signal?: AbortSignal) => fetch(new URL('/?window=30d', base), { headers: { authorization: `Bearer ${TOKEN}` }, signal });

  for (let i = 0; i < 5; i++) await appSelect1();
  const idle: number[] = [];
  for (let i = 0; i < 40; i++) idle.push(await appSelect1());
  console.log(`app SELECT 1, idle: ${figures(idle)}`);

  const single = performance.now();
  const one = await page();
  await one.text();
  console.log(`one /?window=30d alone: ${one.status} in ${ms(single).toFixed(0)} ms`);

  const t0 = performance.now();
  const burst = Promise.all(Array.from({ length: requests }, async () => {
    const res = await page();
    await res.text();
    return { status: res.status, ms: ms(t0) };
  }));
  const underLoad = await sampleWhile(burst);
  const pages = await burst;
  console.log(`${requests} concurrent /?window=30d: ${byStatus(pages)}; all done in ${ms(t0).toFixed(0)} ms`);
  console.log(`app SELECT 1 meanwhile: ${figures(underLoad)}`);

  await sleep(500);
  const aborted = await Promise.allSettled(Array.from({ length: 12 }, () => page(AbortSignal.timeout(60)).then((r) => r.text())));
  await sleep(300);
  console.log(`12 clients that gave up after 60 ms (${aborted.filter((a) => a.status === 'rejected').length} aborted): ` +
    `${await runningStatements()} statements still running 300 ms later`);
  await waitForQuiet();
}

/** Statements the last phase left behind must not slow the next one. */
async function waitForQuiet(): Promise<void> {
  while ((await runningStatements()) > 0) await sleep(200);
}

try {
  await migrate(url);
  await pool.query(`CREATE SCHEMA pgboss; CREATE TABLE pgboss.job (name text, id uuid, state text, PRIMARY KEY (name, id))`);
  await makeRows(pool, { rows, days: 30, onProgress: (n) => process.stderr.write(`\rmaking rows: ${n}/${rows}`) });
  process.stderr.write('\n');
  await pool.query('VACUUM ANALYZE job_logs');
  for (const src of sources) {
    console.log(`\n--- dashboard from ${src}; ${rows} rows in the 30-day window`);
    await measure(src);
  }
} finally {
  await pool.end();
  if (!values.keep) await withClient(server.url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  await server.stop();
}
