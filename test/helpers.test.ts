// Proves the test database helpers: each file gets a migrated clone of the template.
import { expect, test } from 'vitest';
import { setupTestDb } from './helpers/db.ts';

const db = setupTestDb('helpers');

test('a cloned database has the job log, its section index and the pg-boss schema', async () => {
  const { rows: [database] } = await db.pool.query('SELECT current_database() AS name');
  expect(database.name).toMatch(/^joblog_helpers_[0-9a-f]{8}$/);

  const { rows: [index] } = await db.pool.query(
    `SELECT indexdef FROM pg_indexes WHERE tablename = 'job_logs' AND indexname = 'job_logs_section_key'`,
  );
  expect(index?.indexdef).toMatch(/^CREATE UNIQUE INDEX .* \(user_id, "group"\) WHERE \(state = 'started'/);

  const { rows: [tables] } = await db.pool.query(
    `SELECT to_regclass('public.job_logs')::text AS job_logs, to_regclass('pgboss.job')::text AS job`,
  );
  expect(tables).toEqual({ job_logs: 'job_logs', job: 'pgboss.job' });
  expect(await db.prisma.jobLog.count()).toBe(0);
});

test('pg-boss sends and fetches a job in it', async () => {
  // migrate: false makes start() fail unless the template already holds pg-boss's schema.
  const boss = await db.boss({ migrate: false });
  await boss.createQueue('helpers-smoke');
  const id = await boss.send('helpers-smoke', { hello: 'world' });

  const jobs = await boss.fetch('helpers-smoke');

  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatchObject({ id, data: { hello: 'world' } });
});
