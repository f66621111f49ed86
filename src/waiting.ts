// onBusy: { wait }: a busy job is put back into pg-boss to run again later, without using its
// retry budget, until the section opens or the deadline passes.
//
// pg-boss 12 has no supported way to defer a job that is active: `fail` spends an attempt (and
// `retryDelay` is the queue's), `retry` and `resume` only take failed / cancelled jobs, `update`
// only jobs not yet active, and re-sending under the same id is refused while the job exists.
// Its internal `restore` (what it does itself to jobs past `localGroupConcurrency`) sets an active
// job back to `created` with `started_on` cleared, so the next fetch does not count a retry, but
// it is not exported, not fenced by attempt, and takes no start time.
//
// So the deferral is one statement of our own on pg-boss's job table, the same as `restore` plus a
// start time: fenced by attempt (state 'active' and the retry_count the worker fetched), it sets
// state 'retry', clears started_on (pg-boss then does not count the next run as a retry: budget
// untouched, `retryCount` and so the log's `attempt` unchanged), sets start_after to the next
// wake-up, and stores when the waiting began in the job's `output`, which pg-boss hands to the
// next run. 'retry' rather than 'created' keeps a `key_strict_fifo` key blocked while it waits.
//
// The batch's result for a deferred job ('completed') still goes to pg-boss, which settles it with
// a statement fenced the same way (state 'active' and retry_count); the job is no longer active,
// so that does nothing. Because the next run has the same retry_count, the deferral is made at the
// very end of the batch and the wake-up is at least a second away: pg-boss's settle of this batch
// must not land after another worker has fetched the job again.
//
// Relies on these pg-boss 12 internals (checked against 12.38.0): the columns name, id, state,
// retry_count, started_on, heartbeat_on, start_after, output; `<schema>.job_now()`; and the fetch
// incrementing retry_count only when started_on is set. test/waiting.test.ts checks each of them.
import type { JobWithMetadata } from 'pg-boss';
import type { JobIdentity } from './store.ts';
import type { PrismaLike, WaitPolicy } from './types.ts';

/** What a waiting job carries in its pg-boss `output` from one run to the next. */
export interface WaitMark {
  /** When it first found its section busy (database clock). */
  since: Date;
  /** How many times it has been put back. */
  waits: number;
}

/** The wait mark of a job that was put back, or null. */
export function waitMarkOf(job: JobWithMetadata<unknown>): WaitMark | null {
  const mark = (job.output as { joblogWait?: { since?: unknown; waits?: unknown } } | null | undefined)?.joblogWait;
  if (!mark || typeof mark.since !== 'string') return null;
  const since = new Date(mark.since);
  return Number.isNaN(since.getTime()) ? null : { since, waits: Number(mark.waits) || 0 };
}

export interface BusyJob {
  job: JobWithMetadata<unknown>;
  /** The job's row as it would be written. */
  identity: JobIdentity;
  holderJid: string | null;
  policy: WaitPolicy['wait'];
}

export type DeferOutcome =
  /** Put back; it runs again at the next wake-up. */
  | { outcome: 'deferred' }
  /** Waited `giveUpAfterSeconds` already: record it `skipped`. */
  | { outcome: 'expired'; waitedMs: number }
  /** No longer active under this attempt (expired by pg-boss meanwhile): leave it alone. */
  | { outcome: 'stale' };

const deferStatement = (schema: string) => `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb)
    AS x(i int, id uuid, retry_count int, since timestamptz, waits int, holder_jid text,
         every float8, give_up float8)
), clock AS (
  SELECT "${schema}".job_now() AS now
), deadlines AS (
  SELECT x.*, COALESCE(x.since, c.now) AS began, c.now,
         COALESCE(x.since, c.now) + x.give_up * interval '1 second' AS deadline,
         EXISTS (SELECT 1 FROM "${schema}".job a
                  WHERE a.name = $1 AND a.id = x.id AND a.state = 'active'
                    AND a.retry_count = x.retry_count) AS active
    FROM input x CROSS JOIN clock c
), deferred AS (
  UPDATE "${schema}".job j
     SET state = 'retry', started_on = NULL, heartbeat_on = NULL,
         -- the next multiple of retryEverySeconds at least 1 s away, not past the deadline
         start_after = GREATEST(d.now + interval '1 second', LEAST(d.deadline,
           to_timestamp((floor((extract(epoch FROM d.now) + 1) / d.every) + 1) * d.every))),
         output = jsonb_build_object('joblogWait', jsonb_build_object(
           'since', d.began, 'waits', d.waits + 1, 'holderJid', d.holder_jid))
    FROM deadlines d
   WHERE j.name = $1 AND j.id = d.id AND j.state = 'active' AND j.retry_count = d.retry_count
     AND d.deadline > d.now
  RETURNING j.id
)
SELECT d.i, CASE WHEN f.id IS NOT NULL THEN 'deferred' WHEN NOT d.active THEN 'stale' ELSE 'expired' END AS outcome,
       round(extract(epoch FROM d.now - d.began) * 1000)::int AS waited_ms
  FROM deadlines d LEFT JOIN deferred f ON f.id = d.id
 ORDER BY d.i`;

/** Puts busy jobs back into pg-boss's job table (see the top of this file). */
export class BusyWaits {
  readonly #prisma: PrismaLike;
  readonly #statement: string;

  constructor(prisma: PrismaLike, bossSchema: string) {
    this.#prisma = prisma;
    this.#statement = deferStatement(bossSchema);
  }

  /** Defer the busy jobs of one queue's batch, in one statement; one outcome per job, in order. */
  async defer(queue: string, jobs: BusyJob[]): Promise<DeferOutcome[]> {
    const input = jobs.map(({ job, holderJid, policy }, i) => {
      const mark = waitMarkOf(job);
      return {
        i, id: job.id, retry_count: job.retryCount, since: mark?.since.toISOString() ?? null,
        waits: mark?.waits ?? 0, holder_jid: holderJid, every: policy.retryEverySeconds, give_up: policy.giveUpAfterSeconds,
      };
    });
    const rows = await this.#prisma.$queryRawUnsafe<{ i: number; outcome: string; waited_ms: number }[]>(
      this.#statement, queue, JSON.stringify(input),
    );
    return rows.map((row) =>
      row.outcome === 'expired' ? { outcome: 'expired', waitedMs: Number(row.waited_ms) } : { outcome: row.outcome as 'deferred' | 'stale' },
    );
  }
}
