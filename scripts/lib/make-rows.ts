// Realistic job_logs rows, made by PostgreSQL itself (INSERT … SELECT generate_series): the demo
// app's four job types, mostly finished with some skipped, failed and dead, a few sections held
// now, start times spread over the last `days` days, durations from milliseconds to minutes.
import type pg from 'pg';

export interface MakeRowsOptions {
  /** Rows to add. */
  rows: number;
  /** Start times are spread over this many days before now. Default 90. */
  days?: number;
  /** Distinct users. Default 5000. */
  users?: number;
  /** Rows per INSERT statement (each its own transaction). Default 100000. */
  chunk?: number;
  /** Called after each chunk with the rows made so far. */
  onProgress?: (made: number) => void;
}

// Start times grow with the row number (with ten minutes of jitter), as in a log that is only
// ever appended to, so the table's physical order follows time as it would in production.
// One row in 2000 is `started` and holds a section of its own user ('holder-<n>'), so the
// section index never conflicts; their start times are within the last hour.
// $1..$2 row numbers, $3 days, $4 users, $5 last row number of the run, $6 rows of the run
const insertChunk = `
WITH g AS (
  SELECT i, random() AS r_type, random() AS r_state, random() AS r_time, random() AS r_dur,
         1 + floor(random() * $4::int)::int AS u
    FROM generate_series($1::bigint, $2::bigint) AS i
), k AS (
  SELECT i, u, r_dur,
         CASE WHEN r_type < 0.4 THEN 'financial_data_import' WHEN r_type < 0.6 THEN 'reconciliation'
              WHEN r_type < 0.85 THEN 'report_export' ELSE 'welcome_email' END AS job_type,
         CASE WHEN i % 2000 = 0 THEN 'started' WHEN r_state < 0.86 THEN 'finished'
              WHEN r_state < 0.91 THEN 'skipped' WHEN r_state < 0.97 THEN 'failed' ELSE 'dead' END AS state,
         CASE WHEN i % 2000 = 0 THEN now() - r_time * interval '1 hour'
              ELSE now() - ($5::bigint - i) * $3::int * interval '1 day' / $6::bigint
                   - r_time * interval '10 minutes' END AS started_at
    FROM g
), r AS (
  SELECT k.*,
         CASE job_type WHEN 'welcome_email' THEN NULL WHEN 'report_export' THEN 'reports' ELSE 'financial' END AS grp,
         CASE WHEN state = 'skipped' THEN 0
              ELSE round(exp(r_dur * CASE job_type WHEN 'welcome_email' THEN 7 ELSE 12 END))::int END AS dur,
         CASE state WHEN 'dead' THEN 3 WHEN 'failed' THEN 1 ELSE 1 + (i % 7 = 0)::int END AS attempt,
         jsonb_build_object('name', 'Error', 'message', 'upstream timeout after 30 s') AS err
    FROM k
)
INSERT INTO job_logs (jid, queue, job_type, state, user_id, "group", attempt, max_attempts, queued_at,
                      started_at, finished_at, duration_ms, error, errors, created_at, updated_at)
SELECT gen_random_uuid(), replace(job_type, '_', '-'), job_type::"JobType", state::"JobState",
       CASE WHEN state = 'started' THEN 'holder-' || i ELSE 'user-' || u END,
       CASE WHEN state = 'started' THEN 'financial' ELSE grp END,
       attempt, 3, started_at - interval '2 seconds', started_at,
       CASE WHEN state = 'started' THEN NULL ELSE started_at + dur * interval '1 millisecond' END,
       CASE WHEN state = 'started' THEN NULL ELSE dur END,
       CASE WHEN state IN ('failed', 'dead') THEN err END,
       CASE WHEN state IN ('failed', 'dead')
            THEN (SELECT jsonb_agg(jsonb_build_object('attempt', a, 'at', started_at, 'error', err))
                    FROM generate_series(1, attempt) AS a)
            ELSE '[]'::jsonb END,
       started_at, started_at
  FROM r`;

/** Adds `rows` rows to job_logs; returns how many were made. */
export async function makeRows(db: pg.Pool | pg.Client, options: MakeRowsOptions): Promise<number> {
  const { rows, days = 90, users = 5000, chunk = 100_000 } = options;
  const [{ start }] = (await db.query(`SELECT coalesce(max(id), 0)::bigint + 1 AS start FROM job_logs`)).rows;
  const last = (BigInt(start) + BigInt(rows - 1)).toString();
  let made = 0;
  while (made < rows) {
    const n = Math.min(chunk, rows - made);
    const from = BigInt(start) + BigInt(made);
    await db.query(insertChunk, [from.toString(), (from + BigInt(n - 1)).toString(), days, users, last, rows]);
    made += n;
    options.onProgress?.(made);
  }
  await db.query('ANALYZE job_logs');
  return made;
}
