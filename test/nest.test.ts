// The NestJS recipe (docs/nestjs.md) as a running app: test/fixtures/nest booted with
// NestFactory.createApplicationContext against real PostgreSQL and pg-boss.
import 'reflect-metadata';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AppModule } from './fixtures/nest/app.module.ts';
import { IMPORT_QUEUE } from './fixtures/nest/import.worker.ts';
import { JOB_LOG, PG_BOSS } from './fixtures/nest/joblog.module.ts';
import type { JobLog } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('nest');
/** The test's own connection, told apart from the app's by its application_name. */
let own: pg.Client;
beforeAll(async () => {
  own = new pg.Client({ connectionString: db.url, application_name: 'nest-test' });
  await own.connect();
});
afterAll(() => own?.end());

/** Nest's log lines, by level and context. */
function recordingLogger() {
  const lines: { level: string; context: unknown; message: unknown }[] = [];
  const at = (level: string) => (message: unknown, ...rest: unknown[]) => lines.push({ level, context: rest.at(-1), message });
  const logger: LoggerService = { log: at('log'), error: at('error'), warn: at('warn'), debug: at('debug'), verbose: at('verbose'), fatal: at('fatal') };
  return { logger, lines };
}

/** The row, read with the test's own connection: the app's Prisma is gone after close(). */
async function row(jid: string): Promise<{ state: string; attempt: number } | undefined> {
  const { rows } = await own.query(`SELECT state::text, attempt FROM job_logs WHERE jid = $1`, [jid]);
  return rows[0];
}
const rowIn = (jid: string, state: string) => waitFor(`row ${jid} ${state}`, async () => {
  const r = await row(jid);
  return r?.state === state ? r : undefined;
});

describe('NestJS recipe', () => {
  test('a tracked job finishes; app.close() with a handler in flight lets its row settle before Prisma disconnects', async () => {
    const { logger, lines } = recordingLogger();
    const app = await NestFactory.createApplicationContext(AppModule.register(db.url), { logger });
    app.enableShutdownHooks();
    const boss = app.get<PgBoss>(PG_BOSS);
    // The bridge: a warning reaches Nest's logger as one line, under the JobLog context.
    app.get<JobLog>(JOB_LOG).emit('warning', { code: 'REAP_FAILED', message: 'reaper pass failed: bridge check' });
    expect(lines).toContainEqual({ level: 'warn', context: 'JobLog', message: 'REAP_FAILED: reaper pass failed: bridge check' });
    lines.length = 0;

    const quick = await boss.send(IMPORT_QUEUE, { userId: 'alice', ms: 10 });
    expect(await rowIn(quick!, 'finished')).toEqual({ state: 'finished', attempt: 1 });

    const inFlight = await boss.send(IMPORT_QUEUE, { userId: 'bob', ms: 3000 });
    await rowIn(inFlight!, 'started');
    const closing = new Date();
    await app.close();

    expect(await row(inFlight!)).toEqual({ state: 'finished', attempt: 1 });
    const { rows: [job] } = await own.query(`SELECT state::text FROM pgboss.job WHERE id = $1`, [inFlight]);
    expect(job.state).toBe('completed');
    const { rows: [settled] } = await own.query(`SELECT finished_at > $2 AS after FROM job_logs WHERE jid = $1`, [inFlight, closing]);
    expect(settled.after).toBe(true); // it was in flight when close() began
    // Nothing wrote after Prisma disconnected: a write then would have opened a new pool, left
    // open after shutdown (and lost, had the app ended a pool of its own).
    const { rows: [left] } = await own.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name <> 'nest-test'`);
    expect(left.n).toBe(0);
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  });
});
