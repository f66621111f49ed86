// What a person does about a row: retry a job that died, cancel one that runs, release a section
// whose holder is gone. Each goes through pg-boss (its own retry and cancel) and the log's own
// transitions, refuses with ActionRefusedError what it must not do, and is safe to repeat: a
// second click finds the first one's result and changes nothing.
import { fromPrisma } from 'pg-boss';
import { ActionRefusedError } from './errors.ts';
import { reap } from './maintenance/reaper.ts';
import { ACTION_ENTRY_NAME, toJobLogRow } from './rows.ts';
import { NAME_CHARS, storableText } from './sanitise.ts';
import { isSectionBusyError } from './section.ts';
import * as sql from './sql.ts';
import type { TransactionalPrisma } from './store.ts';
import type { BossLike, JobLogRow, PrismaLike } from './types.ts';

export type ActionName = 'retry' | 'cancel' | 'release';

export interface ActionResult {
  action: ActionName;
  jid: string;
  /** False when the job was already where the action would take it (a second click). */
  changed: boolean;
  /** The row after the action. */
  row: JobLogRow;
}

/** Who asked, recorded in the row's history. */
export interface ActionOptions {
  by?: string;
}

export interface ActionDeps {
  prisma: PrismaLike;
  boss: BossLike | undefined;
  bossSchema: string;
  /** The app's name for the section index. */
  sectionIndex: string;
}

const actor = (options: ActionOptions) => (options.by ? `by ${storableText(options.by, NAME_CHARS)}` : 'by an operator');

async function rowOf(db: PrismaLike, action: ActionName, jid: string): Promise<JobLogRow> {
  const rows = await db.$queryRawUnsafe<Record<string, unknown>[]>(sql.byJid, jid);
  if (!rows?.[0]) throw new ActionRefusedError(action, jid, 'the log has no row for this job');
  return toJobLogRow(rows[0]);
}

function bossOf(deps: ActionDeps, action: ActionName, jid: string) {
  if (!deps.boss) throw new ActionRefusedError(action, jid, 'createJobLog was given no boss: pass your PgBoss to createJobLog({ prisma, boss })');
  return deps.boss;
}

/**
 * Retry a `dead` or `failed` job through pg-boss (`boss.retry`: the job goes back to `retry` with
 * one more attempt allowed; a job cancelled in pg-boss goes back through `boss.resume`). Its row is `started` again and holds its section for that attempt,
 * which re-enters it. Refused for a job that finished or was skipped, for one pg-boss no longer
 * has (its retention deleted it: the log keeps no payload to send it again), and while another
 * job holds its section. Row and pg-boss change in one transaction.
 */
export async function retryJob(deps: ActionDeps, jid: string, options: ActionOptions = {}): Promise<ActionResult> {
  const boss = bossOf(deps, 'retry', jid);
  const before = await rowOf(deps.prisma, 'retry', jid);
  if (before.state === 'started') return { action: 'retry', jid, changed: false, row: before };
  if (before.state === 'finished' || before.state === 'skipped') {
    throw new ActionRefusedError('retry', jid, `the job ended ${before.state}; only dead or failed jobs are retried`);
  }
  const note = { name: ACTION_ENTRY_NAME, code: 'RETRY_REQUESTED', message: `retry requested ${actor(options)}; the job had ended ${before.state}` };
  try {
    await (deps.prisma as TransactionalPrisma).$transaction!(async (tx) => {
      const reopened = await tx.$queryRawUnsafe<unknown[]>(sql.reopenForRetry, jid, JSON.stringify(note));
      if (!reopened?.length) throw new ActionRefusedError('retry', jid, 'the row changed meanwhile; look again');
      const [job] = await tx.$queryRawUnsafe<{ state: string }[]>(`SELECT state::text AS state FROM "${deps.bossSchema}".job WHERE name = $1 AND id = $2::uuid`, before.queue, jid);
      if (!job) {
        throw new ActionRefusedError('retry', jid, 'pg-boss no longer has this job (deleted after its retention); the log keeps no payload to send it again: send a new job');
      }
      // A failed job goes back through pg-boss's retry (one more attempt allowed), a cancelled one
      // through its resume. Both are typed as an empty interface; pg-boss 12 resolves { affected }.
      const db = { db: fromPrisma(tx as never) };
      const result = (job.state === 'cancelled' ? await boss.resume(before.queue, jid, db) : await boss.retry(before.queue, jid, db)) as { affected?: number };
      if (result.affected === 0) throw new ActionRefusedError('retry', jid, `pg-boss has the job as ${job.state}, neither failed nor cancelled`);
    });
  } catch (error) {
    if (isSectionBusyError(error, deps.sectionIndex)) {
      const holder = await deps.prisma.$queryRawUnsafe<{ jid: string }[]>(sql.holder, before.userId, before.group);
      throw new ActionRefusedError('retry', jid, `its section is held by job ${holder?.[0]?.jid ?? '(gone meanwhile)'}; retry once it is free`, { cause: error });
    }
    throw error;
  }
  return { action: 'retry', jid, changed: true, row: await rowOf(deps.prisma, 'retry', jid) };
}

/**
 * Cancel a `started` job through pg-boss (`boss.cancel`), then end its row as the reaper would
 * (`dead`, `JOB_CANCELLED`). A handler that is running is not stopped by pg-boss; its writes to
 * the log are fenced off. Refused for a job that has already ended.
 */
export async function cancelJob(deps: ActionDeps, jid: string, options: ActionOptions = {}): Promise<ActionResult> {
  const boss = bossOf(deps, 'cancel', jid);
  const before = await rowOf(deps.prisma, 'cancel', jid);
  if (before.state !== 'started') {
    if (before.error?.code === 'JOB_CANCELLED') return { action: 'cancel', jid, changed: false, row: before };
    throw new ActionRefusedError('cancel', jid, `the job already ended ${before.state}`);
  }
  if (before.leaseUntil) throw new ActionRefusedError('cancel', jid, 'a joblog.section() row has no pg-boss job to cancel; release it once its holder is gone');
  await boss.cancel(before.queue, jid);
  await deps.prisma.$queryRawUnsafe(sql.noteAction, jid, JSON.stringify({ name: ACTION_ENTRY_NAME, code: 'CANCEL_REQUESTED', message: `cancel requested ${actor(options)}` }));
  await reap(deps.prisma, { bossSchema: deps.bossSchema, jid });
  const row = await rowOf(deps.prisma, 'cancel', jid);
  if (row.state === 'started') throw new ActionRefusedError('cancel', jid, 'pg-boss did not cancel the job (it is no longer waiting or running)');
  return { action: 'cancel', jid, changed: true, row };
}

/**
 * Free the section of a `started` row whose holder is gone: the transition `reap()` makes, for
 * this row alone (pg-boss ended or lost the job, `maxHoldSeconds` passed, a lease ran out).
 * Refused while the holder is alive (its pg-boss job is active, or waits for a retry it still may hold for).
 */
export async function releaseSection(deps: ActionDeps, jid: string, options: ActionOptions & { maxHoldSeconds?: { byGroup: Record<string, number>; byType: Record<string, number> } } = {}): Promise<ActionResult> {
  const before = await rowOf(deps.prisma, 'release', jid);
  if (before.state !== 'started') return { action: 'release', jid, changed: false, row: before };
  const result = await reap(deps.prisma, { bossSchema: deps.bossSchema, jid, ...(options.maxHoldSeconds ? { maxHoldSeconds: options.maxHoldSeconds } : {}) });
  if (result.jids.length === 0) {
    throw new ActionRefusedError('release', jid, before.leaseUntil
      ? `its holder is alive: the lease runs until ${before.leaseUntil.toISOString()}`
      : 'its holder is alive: pg-boss has the job running or waiting for its retry');
  }
  await deps.prisma.$queryRawUnsafe(sql.noteAction, jid, JSON.stringify({ name: ACTION_ENTRY_NAME, code: 'RELEASE_REQUESTED', message: `section released ${actor(options)}` }));
  return { action: 'release', jid, changed: true, row: await rowOf(deps.prisma, 'release', jid) };
}
