import * as sql from './sql.ts';
import { recordError, toJobLogRow } from './rows.ts';
import type { JobLogRow, JobState, PrismaLike } from './types.ts';

/** What a job's row says about it before it runs. */
export interface JobIdentity {
  jid: string;
  queue: string;
  type: string;
  userId: string | null;
  group: string | null;
  attempt: number;
  maxAttempts: number;
  queuedAt: Date | null;
}

export type ClaimResult =
  | { outcome: 'claimed' | 'reentered' }
  | { outcome: 'busy'; holderJid: string | null }
  /** The row belongs to a newer attempt of the same job. */
  | { outcome: 'stale'; ownAttempt: number }
  /** The job's row is already terminal (finished, failed, dead or skipped). */
  | { outcome: 'settled'; state: JobState };

/** The section's holder can finish between the failed insert and the look-up; try again then. */
const CLAIM_TRIES = 5;

/** Every read and write of `job_logs`, through the caller's Prisma client. */
export class LogStore {
  readonly #prisma: PrismaLike;

  constructor(prisma: PrismaLike) {
    this.#prisma = prisma;
  }

  async #rows(statement: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    return (await this.#prisma.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...values)) ?? [];
  }

  async claim(job: JobIdentity): Promise<ClaimResult> {
    for (let tries = 1; ; tries++) {
      const rows = await this.#rows(sql.claim, [
        job.jid, job.queue, job.type, job.userId, job.group, job.attempt, job.maxAttempts, job.queuedAt,
      ]);
      if (rows[0]) return { outcome: rows[0].outcome as 'claimed' | 'reentered' };
      const [why] = await this.#rows(sql.claimConflict, [job.jid, job.userId, job.group]);
      if (why?.own_state === 'started') return { outcome: 'stale', ownAttempt: Number(why.own_attempt) };
      if (why?.own_state) return { outcome: 'settled', state: why.own_state as JobState };
      if (why?.holder_jid || tries >= CLAIM_TRIES) {
        return { outcome: 'busy', holderJid: (why?.holder_jid as string | null) ?? null };
      }
    }
  }

  /** True when the row was settled by this attempt; false when fenced off (stale attempt). */
  async finish(jid: string, attempt: number): Promise<boolean> {
    return (await this.#rows(sql.finish, [jid, attempt])).length === 1;
  }

  /** Record a failed attempt; `next` is `started` while a retry is due. False when fenced off. */
  async recordFailure(jid: string, attempt: number, error: unknown, next: 'started' | 'failed' | 'dead'): Promise<boolean> {
    const rows = await this.#rows(sql.recordFailure, [jid, attempt, JSON.stringify(recordError(error)), next]);
    return rows.length === 1;
  }

  /** Write the row of a job that ends without running. False if the job already had a row. */
  async recordSettled(
    job: JobIdentity,
    state: 'skipped' | 'failed' | 'dead',
    details: { error?: unknown; holderJid?: string | null },
  ): Promise<boolean> {
    const error = details.error === undefined ? null : JSON.stringify(recordError(details.error));
    const rows = await this.#rows(sql.recordSettled, [
      job.jid, job.queue, job.type, job.userId, job.group, job.attempt, job.maxAttempts, job.queuedAt,
      state, error, details.holderJid ?? null,
    ]);
    return rows.length === 1;
  }

  async owns(jid: string, attempt: number): Promise<boolean> {
    const [row] = await this.#rows(sql.ownsRow, [jid, attempt]);
    return row?.owns === true;
  }

  async holder(userId: string, group: string): Promise<JobLogRow | null> {
    const [row] = await this.#rows(sql.holder, [userId, group]);
    return row ? toJobLogRow(row) : null;
  }

  async inProgress(userId: string, group: string | null, types: string[] | null): Promise<JobLogRow[]> {
    return (await this.#rows(sql.inProgress, [userId, group, types])).map(toJobLogRow);
  }

  async byJid(jid: string): Promise<JobLogRow | null> {
    const [row] = await this.#rows(sql.byJid, [jid]);
    return row ? toJobLogRow(row) : null;
  }
}
