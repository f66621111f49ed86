import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog, isSectionBusyError, SectionBusyError } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { holdSection } from './helpers/joblog.ts';
import { createWitness, overlaps, witnessed } from './helpers/witness.ts';

const db = setupTestDb('sections');
const clients: PrismaClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.$disconnect()));
});

const noBoss = { work: async () => 'unused' } as never;
const joblogOf = (prisma = db.prisma) => createJobLog({ prisma, boss: noBoss });

/** A job log on a connection of its own: a separate PrismaClient with its own pool. */
function separateJobLog() {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  clients.push(prisma);
  return joblogOf(prisma);
}

describe('critical sections', () => {
  test('16 parallel claims of one section on 16 connections: exactly one wins, the witness sees no overlap', async () => {
    await createWitness(db.pool);
    const logs = Array.from({ length: 16 }, separateJobLog);
    await Promise.all(logs.map((l) => l.inProgress({ userId: 'warm-up' }))); // open every connection first
    const results = await Promise.allSettled(logs.map((log, i) =>
      log.section({ type: i % 2 ? 'reconciliation' : 'financial_data_import', userId: 'race', group: 'financial' }, ({ jid }) =>
        witnessed(db.pool, { jid, userId: 'race', group: 'financial' }, () => new Promise((r) => setTimeout(r, 300))))));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(15);
    for (const { reason } of lost) {
      expect(reason).toBeInstanceOf(SectionBusyError);
      expect(isSectionBusyError(reason)).toBe(true);
    }
    expect(await overlaps(db.pool)).toBe(0);
    const { rows } = await db.pool.query(`SELECT state::text, count(*)::int AS n FROM job_logs WHERE user_id = 'race' GROUP BY 1`);
    expect(rows).toEqual([{ state: 'finished', n: 1 }]);
  });

  test('one group excludes across job types; other users and other groups are not blocked', async () => {
    const joblog = joblogOf();
    const holder = await holdSection(joblog, 'u1', 'financial', 'financial_data_import');

    const sameGroupOtherType = joblog.section({ type: 'reconciliation', userId: 'u1', group: 'financial' }, async () => 'ran');
    await expect(sameGroupOtherType).rejects.toBeInstanceOf(SectionBusyError);
    await expect(joblog.section({ type: 'reconciliation', userId: 'u2', group: 'financial' }, async () => 'other user')).resolves.toBe('other user');
    await expect(joblog.section({ type: 'report_export', userId: 'u1', group: 'reports' }, async () => 'other group')).resolves.toBe('other group');
    await expect(joblog.section({ type: 'report_export', userId: 1, group: 'financial' }, async () => 'numeric user')).resolves.toBe('numeric user');

    const inProgress = await joblog.inProgress({ userId: 'u1' });
    expect(inProgress.map((r) => [r.jobType, r.group])).toEqual([['financial_data_import', 'financial']]);
    expect(await joblog.inProgress({ userId: 'u1', types: ['reconciliation'] })).toEqual([]);
    expect(await joblog.inProgress({ userId: 'u1', group: 'reports' })).toEqual([]);
    await holder.release();
    expect(await joblog.holder('u1', 'financial')).toBeNull();
    await expect(joblog.section({ type: 'reconciliation', userId: 'u1', group: 'financial' }, async () => 'now')).resolves.toBe('now');
  });

  test('section() records its own row: finished, or failed with the error it rethrows', async () => {
    const joblog = joblogOf();
    const jid = randomUUID();
    await joblog.section({ jid, type: 'reconciliation', userId: 'u-row', group: 'g', queue: 'http' }, async () => {});
    expect(await joblog.get(jid)).toMatchObject({ state: 'finished', queue: 'http', attempt: 1, maxAttempts: 1 });
    const failing = randomUUID();
    await expect(joblog.section({ jid: failing, type: 'reconciliation', userId: 'u-row', group: 'g' }, async () => {
      throw new Error('ledger locked');
    })).rejects.toThrow('ledger locked');
    expect(await joblog.get(failing)).toMatchObject({ state: 'failed', error: { message: 'ledger locked' } });
    expect(await joblog.holder('u-row', 'g')).toBeNull();
  });
});

describe('isSectionBusyError', () => {
  const insert = `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", max_attempts) VALUES (gen_random_uuid(), 'q', 'reconciliation', $1, 'g', 1)`;

  test('true for the section index violation from Prisma raw (P2010), Prisma ORM (P2002) and pg (23505)', async () => {
    await db.pool.query(insert, ['busy-user']);
    const raw = await db.prisma.$executeRawUnsafe(insert, 'busy-user').catch((e) => e);
    expect(raw.code).toBe('P2010');
    expect(isSectionBusyError(raw)).toBe(true);

    const orm = await db.prisma.jobLog.create({
      data: { jid: randomUUID(), queue: 'q', jobType: 'reconciliation', userId: 'busy-user', group: 'g', maxAttempts: 1 },
    }).catch((e) => e);
    expect(orm.code).toBe('P2002');
    expect(isSectionBusyError(orm)).toBe(true);

    const plain = await db.pool.query(insert, ['busy-user']).catch((e) => e);
    expect(plain).toBeInstanceOf(pg.DatabaseError);
    expect(isSectionBusyError(plain)).toBe(true);
    expect(isSectionBusyError(new Error('wrapped', { cause: plain }))).toBe(true);
    expect(isSectionBusyError(new SectionBusyError('u', 'g', null))).toBe(true);
  });

  test('false for a violation of another unique index, other errors and non-errors', async () => {
    const jid = randomUUID();
    const dup = `INSERT INTO job_logs (jid, queue, job_type, max_attempts) VALUES ($1::uuid, 'q', 'reconciliation', 1)`;
    await db.pool.query(dup, [jid]);
    const plain = await db.pool.query(dup, [jid]).catch((e) => e);
    expect(plain.code).toBe('23505');
    expect(isSectionBusyError(plain)).toBe(false);
    const raw = await db.prisma.$executeRawUnsafe(dup, jid).catch((e) => e);
    expect(raw.code).toBe('P2010');
    expect(isSectionBusyError(raw)).toBe(false);
    const orm = await db.prisma.jobLog.create({ data: { jid, queue: 'q', jobType: 'reconciliation', maxAttempts: 1 } }).catch((e) => e);
    expect(orm.code).toBe('P2002');
    expect(isSectionBusyError(orm)).toBe(false);
    const other = await db.pool.query('SELECT 1/0').catch((e) => e);
    expect(isSectionBusyError(other)).toBe(false);
    for (const value of [null, undefined, 'job_logs_section_key', 42, {}, new Error('job_logs_section_key')]) {
      expect(isSectionBusyError(value)).toBe(false);
    }
  });
});
