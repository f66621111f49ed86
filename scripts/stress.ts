// npm run stress [-- --jobs N --workers N --concurrency N --users N]
//
// The critical section under load, against pg-boss's own per-group limit. Two runs of the same
// workload on a fresh database: N jobs of two job types (imports and reconciliations, two queues)
// over U users, all in the `financial` group, random durations and planned failures, handled by W
// worker processes × C concurrent loops. Handlers record entry and exit in a witness table.
//   section:           joblog.work with onBusy: { wait } — must show zero overlaps, exactly one
//                      terminal row per job, no row left started;
//   groupConcurrency:  plain boss.work with groupConcurrency: 1 (no section) — shows the overlaps
//                      pg-boss allows.
// Ends with one line: stress: jobs=… overlaps_section=… overlaps_groupConcurrency=… stuck=… lost=…
// and exits non-zero if the section run overlapped, left rows started or lost jobs.
// DATABASE_URL names the server to use (a database is created on it and dropped); unset: embedded.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { databaseUrl, migrate, openDatabase, withClient } from './lib/database.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    workers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '4' },
    users: { type: 'string', default: '50' },
    'timeout-seconds': { type: 'string', default: '600' },
  },
});
const config = {
  jobs: positive('jobs'), workers: positive('workers'), concurrency: positive('concurrency'),
  users: positive('users'), timeoutMs: positive('timeout-seconds') * 1000,
};

function positive(name: keyof typeof values): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`stress: --${name} must be a positive integer, got ${values[name]}`);
    process.exit(2);
  }
  return n;
}

const workerScript = path.join(import.meta.dirname, 'lib', 'stress-worker.ts');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RunResult { jids: string[]; overlaps: number; seconds: number }

async function main(): Promise<number> {
  const server = await openDatabase('joblog_stress_server');
  const name = `joblog_stress_${randomBytes(4).toString('hex')}`;
  await withClient(server.url, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = databaseUrl(server.url, name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await migrate(url);
    const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
    boss.on('error', (error) => console.error(`stress: pg-boss: ${error.message}`));
    await boss.start();
    await pool.query(`CREATE TABLE witness (id bigserial PRIMARY KEY, run text NOT NULL, jid uuid NOT NULL,
      user_id text NOT NULL, entered timestamptz NOT NULL, exited timestamptz)`);
    const section = await runOnce(url, pool, boss, 'section');
    const groupConcurrency = await runOnce(url, pool, boss, 'groupConcurrency');
    await boss.stop({ graceful: false });

    const { stuck, lost } = await checkLog(pool, section.jids);
    console.error(`section run: ${section.seconds.toFixed(1)} s; groupConcurrency run: ${groupConcurrency.seconds.toFixed(1)} s`);
    console.log(`stress: jobs=${config.jobs} overlaps_section=${section.overlaps} overlaps_groupConcurrency=${groupConcurrency.overlaps} stuck=${stuck} lost=${lost}`);
    return section.overlaps === 0 && stuck === 0 && lost === 0 ? 0 : 1;
  } finally {
    await pool.end();
    await withClient(server.url, (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
    await server.stop();
  }
}

/** Send the workload, run it on worker processes until pg-boss has settled every job, count overlaps. */
async function runOnce(url: string, pool: pg.Pool, boss: PgBoss, mode: 'section' | 'groupConcurrency'): Promise<RunResult> {
  const queues = [`stress-import-${mode}`, `stress-reconcile-${mode}`] as const;
  for (const queue of queues) await boss.createQueue(queue, { retryLimit: 2, retryDelay: 0, expireInSeconds: 300 });
  const jids = await sendWorkload(boss, queues, mode);
  const started = Date.now();
  const children = await Promise.all(
    Array.from({ length: config.workers }, () => startWorker(url, mode, queues)),
  );
  try {
    await waitUntilSettled(pool, jids);
  } finally {
    await Promise.all(children.map(stopWorker));
  }
  const seconds = (Date.now() - started) / 1000;
  const { rows } = await pool.query<{ n: number }>(`
    SELECT count(*)::int AS n FROM witness a JOIN witness b
      ON a.run = b.run AND a.user_id = b.user_id AND a.id < b.id
     WHERE a.run = $1 AND tstzrange(a.entered, a.exited) && tstzrange(b.entered, b.exited)`, [mode]);
  return { jids, overlaps: rows[0]!.n, seconds };
}

/** The same workload for both runs (same seed per index): user, type, duration, failing attempts. */
async function sendWorkload(boss: PgBoss, queues: readonly [string, string], mode: string): Promise<string[]> {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const byQueue: Record<string, { id: string; data: object; group?: { id: string } }[]> = { [queues[0]]: [], [queues[1]]: [] };
  const jids: string[] = [];
  for (let i = 0; i < config.jobs; i++) {
    const userId = `user-${Math.floor(random() * config.users)}`;
    const queue = random() < 0.5 ? queues[0] : queues[1];
    const ms = 5 + Math.floor(random() * 60);
    const r = random();
    // 80 % succeed at once, 12 % on the 2nd attempt, 6 % on the 3rd, 2 % never (dead)
    const failOnAttempts = r < 0.8 ? [] : r < 0.92 ? [1] : r < 0.98 ? [1, 2] : [1, 2, 3];
    const id = randomUUID();
    jids.push(id);
    byQueue[queue]!.push({ id, data: { userId, ms, failOnAttempts }, ...(mode === 'groupConcurrency' ? { group: { id: userId } } : {}) });
  }
  for (const [queue, jobs] of Object.entries(byQueue)) {
    for (let i = 0; i < jobs.length; i += 500) await boss.insert(queue, jobs.slice(i, i + 500));
  }
  return jids;
}

async function startWorker(url: string, mode: string, queues: readonly string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [workerScript, url, mode, mode, String(config.concurrency), ...queues], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`stress worker exited with code ${code} before it was ready`)));
    child.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve(); });
  });
  child.removeAllListeners('exit');
  return child;
}

function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => { clearTimeout(force); resolve(); });
    child.kill('SIGTERM');
  });
}

/** Until pg-boss has every job completed or failed (or the timeout: what is left then is lost). */
async function waitUntilSettled(pool: pg.Pool, jids: string[]): Promise<void> {
  const deadline = Date.now() + config.timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE id = ANY($1::uuid[]) AND state IN ('completed', 'failed')`, [jids]);
    if (rows[0]!.n === jids.length) return;
    await sleep(500);
  }
  console.error(`stress: timed out after ${config.timeoutMs / 1000} s with jobs unsettled`);
}

/** stuck: rows left `started`; lost: jobs without exactly one terminal row. */
async function checkLog(pool: pg.Pool, jids: string[]): Promise<{ stuck: number; lost: number }> {
  const { rows } = await pool.query<{ stuck: number; lost: number; states: Record<string, number> }>(`
    WITH per_job AS (
      SELECT s.jid, count(l.id) AS n, bool_and(l.state <> 'started') AS settled
        FROM unnest($1::uuid[]) AS s(jid) LEFT JOIN job_logs l ON l.jid = s.jid
       GROUP BY s.jid
    )
    SELECT (SELECT count(*) FROM job_logs WHERE state = 'started')::int AS stuck,
           (SELECT count(*) FROM per_job WHERE n <> 1 OR NOT settled)::int AS lost,
           (SELECT jsonb_object_agg(state, n) FROM (SELECT state::text, count(*) AS n FROM job_logs GROUP BY 1) x) AS states`, [jids]);
  const row = rows[0]!;
  console.error(`section run log: ${JSON.stringify(row.states)}`);
  return { stuck: row.stuck, lost: row.lost };
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error('stress failed:', error);
    process.exit(1);
  },
);
