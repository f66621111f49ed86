// The reaper's other half: from pg-boss's side. The reaper reads the log's `started` rows; a job
// whose claim never got a row (the log refused writes on its last attempt, say) has no row to read,
// and a job pg-boss failed after its handler finished (pg-boss's own completion was cut, and its
// fallback failed the whole batch) has a `finished` row that pg-boss contradicts. This pass reads
// the jobs of the tracked queues that pg-boss ended (failed or cancelled) since its last pass:
// - no row → one is written, `dead` (or `failed` for a job without retries), with pg-boss's reason;
// - the row is `finished` by the attempt pg-boss failed → the handler did finish: the pg-boss job
//   is marked `completed` (its output keeps what pg-boss had), so both say the same.
import { isValueError } from '../db-errors.ts';
import { markStale } from '../sql.ts';
import type { PrismaLike } from '../types.ts';

/** Jobs ended this long before the last pass's newest are read again (commit order is not completion order). */
const OVERLAP_SECONDS = 120;

/**
 * $1 jsonb array of { queue, job_type }, $2 read jobs ended after this time, $3 leave the user ids
 * out (a user deleted since, or an id the table now refuses, must not stop every later pass).
 */
const reconcileStatement = (bossSchema: string) => `
WITH tracked AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(queue text, job_type text)
), ended AS (
  SELECT b.id, b.name, b.state::text AS state, b.retry_count, b.retry_limit, b.created_on,
         b.started_on, b.completed_on, b.output, t.job_type
    FROM tracked t
    -- pg-boss's (name, completed_on) index: only the jobs ended since the last pass
    JOIN LATERAL (
      SELECT * FROM "${bossSchema}".job b
       WHERE b.name = t.queue AND b.completed_on > $2::timestamptz AND b.state IN ('failed', 'cancelled')
    ) b ON true
), reasons AS (
  SELECT e.*, jsonb_build_object('name', 'ReaperError', 'code', 'NO_ROW', 'message',
           CASE e.state WHEN 'cancelled' THEN 'job cancelled in pg-boss before its row was written'
           ELSE 'pg-boss failed the job before its row could be written' END
           || COALESCE(' (' || left(COALESCE(e.output ->> 'message', e.output -> 'value' ->> 'message'), 500) || ')', '')
         ) AS reason
    FROM ended e
   WHERE NOT EXISTS (SELECT 1 FROM job_logs l WHERE l.jid = e.id)
), recorded AS (
  INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, queued_at,
                        state, error, errors, started_at, finished_at, duration_ms, created_at, updated_at)
  SELECT r.id, r.name, COALESCE(r.output -> 'joblog' ->> 'type', r.job_type)::"JobType",
         (CASE WHEN $3::boolean THEN NULL ELSE r.output -> 'joblog' ->> 'userId' END)::text /*user_id*/, r.output -> 'joblog' ->> 'group',
         r.retry_count + 1, r.retry_limit + 1, r.created_on,
         CASE WHEN r.state = 'failed' AND r.retry_limit = 0 THEN 'failed' ELSE 'dead' END::"JobState",
         r.reason, jsonb_build_array(jsonb_build_object('attempt', r.retry_count + 1, 'at', r.completed_on, 'error', r.reason)),
         COALESCE(r.started_on, r.completed_on), r.completed_on,
         round(extract(epoch FROM r.completed_on - COALESCE(r.started_on, r.completed_on)) * 1000)::float8,
         clock_timestamp(), clock_timestamp()
    FROM reasons r
  ON CONFLICT DO NOTHING
  RETURNING jid::text AS jid, started_at
), stale AS (${markStale('recorded')} -- the row starts when pg-boss started the job: maybe an hour already summarised
), agreed AS (
  UPDATE "${bossSchema}".job b
     SET state = 'completed',
         output = jsonb_build_object('joblog', 'completed by the job log: the handler finished; pg-boss failed the job after it',
                                     'pgBossOutput', b.output)
    FROM ended e
    JOIN job_logs l ON l.jid = e.id AND l.state = 'finished' AND l.attempt = e.retry_count + 1
   WHERE b.name = e.name AND b.id = e.id AND b.state = 'failed'
  RETURNING b.id
)
SELECT (SELECT array_agg(jid) FROM recorded) AS jids,
       (SELECT count(*) FROM recorded)::int AS recorded,
       (SELECT count(*) FROM agreed)::int AS completed,
       (SELECT max(completed_on) FROM ended) AS through`;

/** Remembers how far it has read, so each pass reads only the jobs pg-boss ended since. */
export class BossReconciler {
  readonly #bossSchema: string;
  /** How far back the first pass reads. */
  readonly #lookbackSeconds: number;
  #since: Date | null = null;

  constructor(bossSchema: string, lookbackSeconds: number) {
    this.#bossSchema = bossSchema;
    this.#lookbackSeconds = lookbackSeconds;
  }

  /** One pass over `tracked` (queue → job type). */
  async run(prisma: PrismaLike, tracked: Map<string, string>): Promise<{ recorded: number; completed: number; jids: string[] }> {
    if (tracked.size === 0) return { recorded: 0, completed: 0, jids: [] };
    const since = this.#since ?? new Date(Date.now() - this.#lookbackSeconds * 1000);
    const input = [...tracked].map(([queue, job_type]) => ({ queue, job_type }));
    const pass = (withoutUsers: boolean) => prisma.$queryRawUnsafe<{ recorded: number; completed: number; through: Date | string | null; jids: string[] | null }[]>(
      reconcileStatement(this.#bossSchema),
      JSON.stringify(input),
      since,
      withoutUsers,
    );
    // A user id the table refuses (its user deleted since the claim, say) fails the whole pass:
    // write those rows without their user ids rather than never.
    const [row] = await Promise.resolve(pass(false)).catch((error: unknown) => {
      if (!isValueError(error)) throw error;
      return pass(true);
    });
    if (row?.through) {
      const through = new Date(row.through).getTime() - OVERLAP_SECONDS * 1000;
      if (through > since.getTime()) this.#since = new Date(through);
    }
    return { recorded: Number(row?.recorded ?? 0), completed: Number(row?.completed ?? 0), jids: row?.jids ?? [] };
  }
}
