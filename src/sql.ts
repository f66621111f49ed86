// The statements that matter, in one place. Every parameter is cast explicitly so the
// statements mean the same whatever types the driver reports for the values.
//
// Written with the library's default names and run bound to the app's (src/names.ts): the table
// `job_logs`, the enums "JobType" and "JobState", a user id cast as `text /*user_id*/` (bound to
// the type of the app's user_id column: write every user-id cast so), and `/*fields:…*/` where a
// claim writes the app's extra columns (`fields`).
//
// Fencing: every write that settles a row names the attempt it belongs to
// (`jid = $1 AND attempt = $2 AND state = 'started'`), so a stale attempt that pg-boss
// ran again after a timeout can never overwrite the newer attempt's row.

export const SECTION_INDEX = 'job_logs_section_key';
/** The section index's columns, in its order. */
export const SECTION_COLUMNS = ['user_id', 'group'] as const;

/** Whole milliseconds from `since` (a column or parameter) to now: duration_ms, waited_ms. */
const msSince = (since: string) => `round(extract(epoch FROM clock_timestamp() - ${since}) * 1000)`;

/** The start of the summary period of each span (UTC) that holds the time `t` (an SQL expression). */
export const SPAN_START = {
  hour: (t: string) => `date_trunc('hour', ${t}, 'UTC')`,
  six_hours: (t: string) => `(date_trunc('day', ${t}, 'UTC') + floor(extract(hour FROM ${t} AT TIME ZONE 'UTC') / 6) * interval '6 hours')`,
  day: (t: string) => `date_trunc('day', ${t}, 'UTC')`,
} as const;

/**
 * Marks the summarised hour, six-hour block and UTC day of each `started_at` in `fromSql` stale (see
 * maintenance/summariser.ts): for a statement that deletes a settled row or moves it out of its
 * hour. A mark that does not exist yet is written stale, so a summary pass running at the same time
 * cannot summarise that hour from a snapshot taken before the change (its insert meets the mark).
 * `fromSql` is a FROM clause with a column `started_at`.
 */
export const markStale = (fromSql: string) => `
  INSERT INTO job_log_periods (span, start, stale)
  SELECT DISTINCT p.span, p.start, true
    FROM ${fromSql}
   CROSS JOIN LATERAL (VALUES ${Object.entries(SPAN_START).map(([span, startOf]) => `('${span}', ${startOf('started_at')})`).join(',\n                              ')}) AS p(span, start)
  ON CONFLICT (span, start) DO UPDATE SET stale = true`;

/** How many entries `errors` keeps: the first attempt's (how it began) and the latest ERRORS_KEPT − 1. */
export const ERRORS_KEPT = 20;

/**
 * `history` (a jsonb array column) with one more `{ attempt, at, error }` entry, capped at
 * ERRORS_KEPT entries: the first one stays, the oldest of the others go. Every append uses this.
 */
export const appendError = (history: string, attempt: string, error: string) => `CASE
  WHEN jsonb_array_length(${history}) < ${ERRORS_KEPT} THEN ${history} || jsonb_build_array(${errorEntry(attempt, error)})
  ELSE jsonb_build_array(${history} -> 0)
       || jsonb_path_query_array(${history}, '$[last - ${ERRORS_KEPT - 3} to last]')
       || jsonb_build_array(${errorEntry(attempt, error)}) END`;

const errorEntry = (attempt: string, error: string) =>
  `jsonb_build_object('attempt', ${attempt}, 'at', clock_timestamp(), 'error', ${error})`;

/** `history` (a jsonb array) cut to ERRORS_KEPT entries the way appendError keeps them. */
const cappedHistory = (history: string) => `CASE WHEN jsonb_array_length(${history}) <= ${ERRORS_KEPT} THEN ${history}
  ELSE jsonb_build_array((${history}) -> 0) || jsonb_path_query_array(${history}, '$[last - ${ERRORS_KEPT - 2} to last]') END`;

/**
 * The busy attempts of a pg-boss output's `joblogBusy` (busy-history.ts) before `attempt`, as
 * rows (attempt, error, entry) whose `entry` is the `errors` entry.
 */
const busyEntries = (list: string, attempt: string) => `
  SELECT x.attempt, x.error,
         jsonb_build_object('attempt', x.attempt, 'at', COALESCE(x.at, clock_timestamp()),
                            'holderJid', x."holderJid", 'error', x.error) AS entry
    FROM jsonb_to_recordset(${list}) AS x(attempt int, at timestamptz, "holderJid" text, error jsonb)
   WHERE x.attempt < ${attempt}`;

/** Why a `joblog.section()` row was ended once its lease had passed (by the reaper or by a claim). */
export const leaseExpiredMessage = (leaseUntil: string) => `'section holder lost: its lease expired at ' || ${leaseUntil}::text`;

const leaseExpiredError = (leaseUntil: string) =>
  `jsonb_build_object('name', 'ReaperError', 'code', 'LEASE_EXPIRED', 'message', ${leaseExpiredMessage(leaseUntil)})`;

/**
 * End, as the reaper would (`dead`, LEASE_EXPIRED), the `started` rows matched by `match` (which
 * names the state: see claimConflicts) whose lease has passed, so a claim need not wait for a
 * reaper to open their section. A worker's row has no lease and is never matched. Returns the ids
 * and jids; the statements using it report the jids as `lapsed_jids` (rows that became terminal).
 */
const endLapsedLeases = (from: string, match: string) => `
  UPDATE job_logs j
     SET state = 'dead', error = ${leaseExpiredError('j.lease_until')},
         errors = ${appendError('j.errors', 'j.attempt', leaseExpiredError('j.lease_until'))},
         finished_at = clock_timestamp(), duration_ms = ${msSince('j.started_at')}::float8,
         updated_at = clock_timestamp()
    ${from}
   WHERE ${match} AND j.lease_until < clock_timestamp()
  RETURNING j.id, j.jid`;

/** The row's columns as the library reads them. */
export const COLUMNS = `id, jid::text AS jid, queue, job_type::text AS job_type, state::text AS state,
  user_id::text AS user_id, "group", attempt, max_attempts, holder_jid::text AS holder_jid, queued_at, started_at,
  finished_at, duration_ms, waited_ms, lease_until, error, errors, created_at, updated_at`;

/** How much of the last error's message a `find()` row carries. */
export const FIND_MESSAGE_CHARS = 200;

/**
 * The columns of a list row: `COLUMNS` without the error documents. The last error's name, code
 * and the start of its message only; `errors` (every attempt's error) is not read at all, not even
 * for its length, which would fetch the whole document from TOAST.
 */
export const LIST_COLUMNS = `id, jid::text AS jid, queue, job_type::text AS job_type, state::text AS state,
  user_id::text AS user_id, "group", attempt, max_attempts, holder_jid::text AS holder_jid, queued_at, started_at,
  finished_at, duration_ms, waited_ms, lease_until, error->>'name' AS error_name,
  error->>'code' AS error_code, left(error->>'message', ${FIND_MESSAGE_CHARS}) AS error_message,
  length(error->>'message') > ${FIND_MESSAGE_CHARS} AS error_truncated, created_at, updated_at`;

/**
 * First statement of a bounded read (its own transaction): its statement timeout, if any, and
 * what `cancelRead` needs to find this backend while the transaction lasts. $1 timeout ms or null
 */
export const beginRead = `
SELECT CASE WHEN $1::int IS NULL THEN NULL ELSE set_config('statement_timeout', $1::int || 'ms', true) END AS timeout,
       pg_backend_pid() AS pid, now()::text AS xact_start`;

/**
 * Cancel the statement a bounded read runs now, from another connection. Only while that backend
 * is still in the same transaction: once the read is over its connection serves someone else.
 * $1 pid, $2 xact_start (text, to the microsecond)
 */
export const cancelRead = `
SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity
 WHERE pid = $1::int AND xact_start = $2::timestamptz`;

/**
 * The answer of a claim statement for a job it wrote no row for (outcome `conflict`), read by
 * that same statement, so a busy section costs one round trip: the job's own row (`own_state`,
 * `own_attempt`: a stale attempt, a settled job, or this attempt's row from an earlier try whose
 * answer was lost) and the section's holder (`holder_jid`). `holder_lapsed`: the holder's lease
 * has passed; the caller then asks `claimConflict(s)`, which ends it (an expired lease frees its
 * section without a reaper) and tries again.
 * The reads see the statement's snapshot, taken before its insert met the conflict: a holder that
 * committed after it is not seen (holder_jid NULL: the caller claims again, as after a holder
 * that left), and a holder seen there may have left since, a newer one having taken its place
 * (the section is busy all the same). The first select of an answering claim: it names the columns.
 * Planning these reads costs more than the insert they follow (about 0.2 ms, measured with
 * log_planner_stats), so each claim statement comes in two forms (ClaimStatement).
 * `from`: the jobs asked about, as `x` with a column `jid`; `userId`, `group`: their section;
 * `mates`: the statement's own inserted rows (jid, user_id, "group"), which its snapshot does not
 * show, for a batch whose jobs share a section; `lead`: columns before the answer's.
 */
const conflictAnswer = (o: { from: string; userId: string; group: string; mates?: string; lead?: string }) => `
SELECT ${o.lead ?? ''}'conflict' AS outcome, own.state::text AS own_state, own.attempt AS own_attempt,
       ${o.mates ? 'COALESCE(mate.jid, held.jid)::text' : 'held.jid::text'} AS holder_jid,
       ${o.mates ? 'mate.jid IS NULL AND ' : ''}held.lease_until < clock_timestamp() AS holder_lapsed
  FROM ${o.from}
  LEFT JOIN job_logs own ON own.jid = x.jid${o.mates ? `
  LEFT JOIN ${o.mates} mate ON mate.user_id = ${o.userId} AND mate."group" = ${o.group}` : ''}
  -- The section index is unique: one probe, at most one holder.
  LEFT JOIN job_logs held ON held.user_id = ${o.userId} AND held."group" = ${o.group} AND held.state = 'started'`;

/** The answer columns of a claimed (or re-entered) job. */
const NO_CONFLICT = 'NULL::text, NULL::int, NULL::text, NULL::boolean';

/**
 * A claim statement in its two forms, with the same parameters. `plain`: rows for the jobs it
 * claimed only, the cheapest to plan; the caller asks `claimConflict(s)` about the others.
 * `answering`: a `conflict` row (conflictAnswer) for each of the others too, for sections that
 * are likely held (one round trip when they are).
 */
export interface ClaimStatement {
  plain: string;
  answering: string;
}

/**
 * Claim a job's row in one statement: re-enter the row of an earlier attempt of the same job
 * when it is still `started` (a retry keeps its section), otherwise insert a new `started` row.
 * The insert does nothing when the jid exists or another job holds the (user, group) section
 * (the partial unique index). Outcome `reentered` or `claimed`; else no row (plain) or `conflict`.
 * $1 jid, $2 queue, $3 job type, $4 user id, $5 group, $6 attempt, $7 max attempts, $8 queued at
 */
const CLAIM_CTES = `
WITH reentered AS (
  UPDATE job_logs
     SET attempt = $6::int, max_attempts = $7::int, updated_at = clock_timestamp()
   WHERE jid = $1::uuid AND state = 'started' AND attempt < $6::int
  RETURNING id
), inserted AS (
  INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, queued_at,
                        started_at, created_at, updated_at /*fields:cols*/)
  SELECT $1::uuid, $2::text, $3::text::"JobType", $4::text /*user_id*/, $5::text, $6::int, $7::int,
         $8::timestamptz, clock_timestamp(), clock_timestamp(), clock_timestamp() /*fields:single*/
   WHERE NOT EXISTS (SELECT 1 FROM reentered)
  ON CONFLICT DO NOTHING
  RETURNING id
)`;
export const claim: ClaimStatement = {
  plain: `${CLAIM_CTES}
SELECT 'reentered' AS outcome FROM reentered
UNION ALL
SELECT 'claimed' AS outcome FROM inserted`,
  answering: `${CLAIM_CTES}
${conflictAnswer({ from: '(SELECT $1::uuid AS jid) x', userId: '$4::text /*user_id*/', group: '$5::text' })}
 WHERE NOT EXISTS (SELECT 1 FROM reentered) AND NOT EXISTS (SELECT 1 FROM inserted)
UNION ALL
SELECT 'reentered', ${NO_CONFLICT} FROM reentered
UNION ALL
SELECT 'claimed', ${NO_CONFLICT} FROM inserted`,
};

/**
 * Why a claim inserted nothing: the job's own row (stale attempt or already settled) or the
 * section's holder. A holder whose lease has passed is ended here and not reported (the main query
 * reads the rows as they were before the CTE's update), so the caller claims again: an expired
 * lease frees its section without a reaper. Runs after a plain claim that wrote no row, and after
 * an answering one that found the holder's lease passed.
 * $1 jid, $2 user id, $3 group
 */
export const claimConflict = `
WITH lapsed AS (${endLapsedLeases('', `j.user_id = $2::text /*user_id*/ AND j."group" = $3::text AND j.state = 'started'`)})
SELECT (SELECT CASE WHEN id IN (SELECT id FROM lapsed) THEN 'dead' ELSE state::text END
          FROM job_logs WHERE jid = $1::uuid) AS own_state,
       (SELECT attempt FROM job_logs WHERE jid = $1::uuid) AS own_attempt,
       (SELECT jid::text FROM job_logs
         WHERE user_id = $2::text /*user_id*/ AND "group" = $3::text AND state = 'started'
           AND id NOT IN (SELECT id FROM lapsed)) AS holder_jid,
       (SELECT array_agg(jid::text) FROM lapsed) AS lapsed_jids`;

/** `error` is the current outcome's: none once finished; the failures of earlier attempts stay in `errors`. $1 jid, $2 attempt */
export const finish = `
UPDATE job_logs
   SET state = 'finished', error = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
       duration_ms = ${msSince('started_at')}::float8
 WHERE jid = $1::uuid AND attempt = $2::int AND state = 'started'
RETURNING id`;

/**
 * Record a failed attempt. $4 is the row's next state: `started` while a retry is due (the
 * section stays held for it), `dead` or `failed` when the job is over.
 * $1 jid, $2 attempt, $3 error (json), $4 next state
 */
export const recordFailure = `
UPDATE job_logs
   SET state = $4::text::"JobState",
       error = $3::jsonb,
       errors = ${appendError('errors', 'attempt', '$3::jsonb')},
       finished_at = CASE WHEN $4::text = 'started' THEN NULL ELSE clock_timestamp() END,
       duration_ms = CASE WHEN $4::text = 'started' THEN NULL
                     ELSE ${msSince('started_at')}::float8 END,
       updated_at = clock_timestamp()
 WHERE jid = $1::uuid AND attempt = $2::int AND state = 'started'
RETURNING id`;

/**
 * A row for a job that ends without running (skipped, invalid payload, busy on its last
 * attempt). It never takes a section. Does nothing if the job already has a row. Its `errors`:
 * the busy attempts before this one ($13, see recordBusyAttempts), then this attempt's error.
 * $1 jid, $2 queue, $3 job type, $4 user id, $5 group, $6 attempt, $7 max attempts,
 * $8 queued at, $9 state, $10 error (json or null), $11 holder jid, $12 waited ms (or null),
 * $13 jsonb array of earlier busy attempts (or '[]')
 */
export const recordSettled = `
INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, queued_at,
                      state, error, errors, holder_jid, started_at, finished_at, duration_ms,
                      waited_ms, created_at, updated_at)
SELECT $1::uuid, $2::text, $3::text::"JobType", $4::text /*user_id*/, $5::text, $6::int, $7::int,
       $8::timestamptz, $9::text::"JobState", $10::jsonb,
       ${cappedHistory(`COALESCE((SELECT jsonb_agg(b.entry ORDER BY b.attempt) FROM (${busyEntries('$13::jsonb', '$6::int')}) b), '[]'::jsonb)
         || CASE WHEN $10::jsonb IS NULL THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('attempt', $6::int, 'at', clock_timestamp(),
                                                      'error', $10::jsonb)) END`)},
       $11::uuid, clock_timestamp(), clock_timestamp(), 0, $12::int, clock_timestamp(), clock_timestamp()
ON CONFLICT (jid) DO NOTHING
RETURNING id`;

/**
 * Does this attempt still own its row (and so its section)? A job whose row is written after its
 * handler (no section, see recordRuns) owns it while there is none yet: $3 true.
 * $1 jid, $2 attempt, $3 a missing row counts as owned
 */
export const ownsRow = `
SELECT COALESCE((SELECT attempt = $2::int AND state = 'started' FROM job_logs WHERE jid = $1::uuid),
                $3::boolean) AS owns`;

/**
 * `ownsRow` for many attempts: the jids that still own their rows, or (`unwritten`) have none yet.
 * $1 jsonb array of { jid, attempt, unwritten? }
 */
export const ownsRows = `
SELECT x.jid::text AS jid
  FROM jsonb_to_recordset($1::jsonb) AS x(jid uuid, attempt int, unwritten boolean)
  LEFT JOIN job_logs j ON j.jid = x.jid
 WHERE CASE WHEN j.id IS NULL THEN COALESCE(x.unwritten, false)
            ELSE j.attempt = x.attempt AND j.state::text = 'started' END`;

/**
 * Lock this attempt's row for a fenced transaction: every write that takes the row or its section
 * away (settle, re-entry, reaper, an expired lease's successor) waits for the lock. A client that
 * freezes while it holds the lock must not hold the section forever: the server ends its session
 * once it has sat idle in the transaction for $3 ms (and the fenced writes never commit).
 * $1 jid, $2 attempt, $3 idle timeout (ms)
 */
export const lockOwnRow = `
SELECT id, set_config('idle_in_transaction_session_timeout', $3::int::text, true) FROM job_logs
 WHERE jid = $1::uuid AND attempt = $2::int AND state = 'started'
   AND (lease_until IS NULL OR lease_until > clock_timestamp())
   FOR UPDATE`;

/** $1 user id, $2 group */
export const holder = `
SELECT ${COLUMNS} FROM job_logs
 WHERE user_id = $1::text /*user_id*/ AND "group" = $2::text AND state = 'started'`;

/** The in-progress scope. $1 user id, $2 group or null, $3 job types or null */
export const inProgress = `
SELECT ${COLUMNS} FROM job_logs
 WHERE user_id = $1::text /*user_id*/ AND state = 'started'
   AND ($2::text IS NULL OR "group" = $2::text)
   AND ($3::text[] IS NULL OR job_type::text = ANY ($3::text[]))
 ORDER BY started_at`;

/** $1 jid */
export const byJid = `SELECT ${COLUMNS} FROM job_logs WHERE jid = $1::uuid`;

/** $1 jids */
export const byJids = `SELECT ${COLUMNS} FROM job_logs WHERE jid = ANY ($1::uuid[])`;

const BATCH_INSERT = `
  INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, queued_at,
                        started_at, created_at, updated_at /*fields:cols*/)
  SELECT x.jid, x.queue, x.job_type::"JobType", x.user_id, x."group", x.attempt, x.max_attempts,
         x.queued_at, clock_timestamp(), clock_timestamp(), clock_timestamp() /*fields:vals*/
    FROM input x`;

const BATCH_INPUT = `SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x(jid uuid, queue text, job_type text, user_id text /*user_id*/, "group" text, attempt int,
         max_attempts int, queued_at timestamptz /*fields:def*/)`;

/** The answer of a batch claim for its jobs that got no row (see conflictAnswer), by jid. */
const batchConflicts = (claimed: string) => `${conflictAnswer({
  from: 'input x', userId: 'x.user_id', group: 'x."group"', mates: 'inserted', lead: 'x.jid::text AS jid, ',
})}
 WHERE NOT EXISTS (SELECT 1 FROM ${claimed} c WHERE c.jid = x.jid)`;

/**
 * Claim the rows of many first attempts in one statement (the jobs of a batch, and of concurrent
 * workers): `claim` for a JSON array of jobs, without the re-entry a first attempt never needs.
 * A row (jid, outcome) per job claimed, and (answering) a `conflict` row per other job; two jobs
 * of one statement that share a section: exactly one wins, the other is told it is the holder.
 * Rows go in (user, group, jid) order, so two concurrent batch claims take the unique index
 * entries in the same order and do not deadlock each other on them.
 * $1 jsonb array of { jid, queue, job_type, user_id, group, attempt, max_attempts, queued_at }
 */
export const claimFirstAttempts: ClaimStatement = {
  plain: `
WITH input AS (${BATCH_INPUT})
${BATCH_INSERT}
   ORDER BY x.user_id, x."group", x.jid
  ON CONFLICT DO NOTHING
RETURNING jid::text AS jid, 'claimed' AS outcome`,
  answering: `
WITH input AS (${BATCH_INPUT}
), inserted AS (
${BATCH_INSERT}
   ORDER BY x.user_id, x."group", x.jid
  ON CONFLICT DO NOTHING
  RETURNING jid, user_id, "group"
)
${batchConflicts('inserted')}
UNION ALL
SELECT jid::text, 'claimed', ${NO_CONFLICT} FROM inserted`,
};

/**
 * `claim` for many jobs, retries among them: re-enter each job's own `started` row of an earlier
 * attempt, insert the others. Rows as claimFirstAttempts', `reentered` too.
 * $1 as for claimFirstAttempts
 */
const CLAIM_BATCH_CTES = `
WITH input AS (${BATCH_INPUT}
), reentered AS (
  UPDATE job_logs j
     SET attempt = x.attempt, max_attempts = x.max_attempts, updated_at = clock_timestamp()
    FROM input x
   WHERE j.jid = x.jid AND j.state::text = 'started' AND j.attempt < x.attempt
  RETURNING j.jid
), inserted AS (
${BATCH_INSERT}
   WHERE NOT EXISTS (SELECT 1 FROM reentered r WHERE r.jid = x.jid)
   ORDER BY x.user_id, x."group", x.jid
  ON CONFLICT DO NOTHING
  RETURNING jid, user_id, "group"
)`;
export const claimBatch: ClaimStatement = {
  plain: `${CLAIM_BATCH_CTES}
SELECT jid::text AS jid, 'reentered' AS outcome FROM reentered
UNION ALL
SELECT jid::text AS jid, 'claimed' AS outcome FROM inserted`,
  answering: `${CLAIM_BATCH_CTES}, claimed AS (
  SELECT jid FROM reentered UNION ALL SELECT jid FROM inserted
)
${batchConflicts('claimed')}
UNION ALL
SELECT jid::text, 'reentered', ${NO_CONFLICT} FROM reentered
UNION ALL
SELECT jid::text, 'claimed', ${NO_CONFLICT} FROM inserted`,
};

/**
 * `claimConflict` for many jobs, after a batch claim (in a new snapshot, so it sees the rows that
 * other jobs of that same statement took). One row per input, in input order. Ends a holder whose
 * lease has passed, as `claimConflict` does (found by id: `state::text`, see settleBatch).
 * $1 jsonb array of { i, jid, user_id, group }
 */
export const claimConflicts = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(i int, jid uuid, user_id text /*user_id*/, "group" text)
), holders AS (
  SELECT x.user_id, x."group", h.id, h.jid
    FROM (SELECT DISTINCT user_id, "group" FROM input) x
    CROSS JOIN LATERAL (
      SELECT id, jid FROM job_logs h
       WHERE h.user_id = x.user_id AND h."group" = x."group" AND h.state = 'started'
       LIMIT 1 -- one probe of the section index per section, not a scan of every started row
    ) h
), lapsed AS (${endLapsedLeases('FROM holders x', `j.id = x.id AND j.state::text = 'started'`)})
SELECT x.i, CASE WHEN EXISTS (SELECT 1 FROM lapsed l WHERE l.id = own.id) THEN 'dead' ELSE own.state::text END AS own_state,
       own.attempt AS own_attempt, held.jid::text AS holder_jid,
       (SELECT array_agg(jid::text) FROM lapsed) AS lapsed_jids
  FROM input x
  LEFT JOIN job_logs own ON own.jid = x.jid
  LEFT JOIN holders held ON held.user_id = x.user_id AND held."group" = x."group"
        AND NOT EXISTS (SELECT 1 FROM lapsed l WHERE l.id = held.id)
 ORDER BY x.i`;

/**
 * Settle many attempts in one statement, each fenced by its attempt like `finish` and
 * `recordFailure`: `state` is `finished` (error NULL: `error` is cleared, as by `finish`),
 * `started` (a failure with a retry due), `failed` or `dead`. Returns the jids that were written;
 * a jid missing from the result was fenced off (a stale attempt).
 * `state::text`: the rows are found by jid alone. Given `state = 'started'`, the planner may read
 * every entry of the state index instead, and under heavy churn (settled rows not yet vacuumed)
 * that index holds thousands of dead 'started' entries: 7.7 ms instead of 1 ms for 50 rows.
 * $1 jsonb array of { jid, attempt, state, error }
 */
export const settleBatch = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(jid uuid, attempt int, state text, error jsonb)
)
UPDATE job_logs j
   SET state = x.state::"JobState",
       error = CASE WHEN x.state = 'finished' THEN NULL ELSE COALESCE(x.error, j.error) END,
       errors = CASE WHEN x.error IS NULL THEN j.errors ELSE ${appendError('j.errors', 'j.attempt', 'x.error')} END,
       finished_at = CASE WHEN x.state = 'started' THEN NULL ELSE clock_timestamp() END,
       duration_ms = CASE WHEN x.state = 'started' THEN NULL
                     ELSE ${msSince('j.started_at')}::float8 END,
       updated_at = clock_timestamp()
  FROM input x
 WHERE j.jid = x.jid AND j.attempt = x.attempt AND j.state::text = 'started'
RETURNING j.jid::text AS jid`;

/**
 * The identity of a job whose row is written after its handler (see recordRuns), with
 * `started_ago`: how many ms ago its handler started (the app's monotonic clock, so the row's times
 * are all the database's clock, however far the app's wall clock is off).
 */
const RUN_INPUT = `jid uuid, queue text, job_type text, user_id text /*user_id*/, "group" text, attempt int,
         max_attempts int, queued_at timestamptz, started_ago float8`;

/**
 * The `started` rows of jobs without a section whose handler has run a while (or called
 * `ctx.fenced`): what is running now, for `inProgress()` and `find()`. A jid that has a row
 * already (a newer attempt's, or a settled one) is left alone. Returns the jids written.
 * $1 jsonb array of { jid, queue, job_type, user_id, group, attempt, max_attempts, queued_at, started_ago, ...fields }
 */
export const recordRunning = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(${RUN_INPUT} /*fields:def*/)
)
INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, queued_at,
                      started_at, created_at, updated_at /*fields:cols*/)
SELECT x.jid, x.queue, x.job_type::"JobType", x.user_id, x."group", x.attempt, x.max_attempts, x.queued_at,
       clock_timestamp() - x.started_ago * interval '1 millisecond', clock_timestamp(), clock_timestamp() /*fields:vals*/
  FROM input x
 ORDER BY x.jid
ON CONFLICT (jid) DO NOTHING
RETURNING jid::text AS jid`;

/**
 * The rows of jobs without a section, written once after their handlers ran (no row before: such a
 * job holds no section, so there is nothing to claim). Each row is inserted with its final state
 * (`finished`, `started` while a retry is due, `failed`, `dead`), the handler's start and end
 * (`started_ago`, `finished_ago`: ms before now, see RUN_INPUT), and the failure in `error` and
 * `errors`. A job that has a row already (written by recordRunning while it ran) has it updated,
 * fenced like settleBatch: only a `started` row of the same attempt; a newer attempt's row or a
 * settled row is never overwritten. `refused`: the log refused the job's user id or fields, and
 * this is the row without them (an `errors` entry says what was refused). Returns the jids written.
 * $1 jsonb array of RUN_INPUT's fields and { state, error, refused, finished_ago, ...fields }
 */
export const recordRuns = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x(${RUN_INPUT}, finished_ago float8, state text, error jsonb, refused jsonb /*fields:def*/)
), timed AS (
  SELECT x.*, c.now - x.started_ago * interval '1 millisecond' AS started_at,
         c.now - x.finished_ago * interval '1 millisecond' AS finished_at
    FROM input x CROSS JOIN (SELECT clock_timestamp() AS now) c
)
INSERT INTO job_logs AS j (jid, queue, job_type, user_id, "group", attempt, max_attempts, queued_at,
                           state, error, errors, started_at, finished_at, duration_ms,
                           created_at, updated_at /*fields:cols*/)
SELECT x.jid, x.queue, x.job_type::"JobType", x.user_id, x."group", x.attempt, x.max_attempts, x.queued_at,
       x.state::"JobState", x.error,
       CASE WHEN x.refused IS NULL THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('attempt', x.attempt, 'at', x.started_at, 'error', x.refused)) END
       || CASE WHEN x.error IS NULL THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('attempt', x.attempt, 'at', x.finished_at, 'error', x.error)) END,
       x.started_at,
       CASE WHEN x.state = 'started' THEN NULL ELSE x.finished_at END,
       CASE WHEN x.state = 'started' THEN NULL ELSE round(x.started_ago - x.finished_ago) END,
       clock_timestamp(), clock_timestamp() /*fields:vals*/
  FROM timed x
 ORDER BY x.jid
ON CONFLICT (jid) DO UPDATE
   SET state = excluded.state,
       error = excluded.error,
       errors = CASE WHEN excluded.error IS NULL THEN j.errors
                ELSE ${appendError('j.errors', 'j.attempt', 'excluded.error')} END,
       finished_at = excluded.finished_at,
       duration_ms = CASE WHEN excluded.state = 'started' THEN NULL
                     ELSE round(extract(epoch FROM excluded.finished_at - j.started_at) * 1000)::float8 END,
       updated_at = clock_timestamp()
 WHERE j.attempt = excluded.attempt AND j.state = 'started'
RETURNING j.jid::text AS jid`;

/**
 * The row of a `joblog.section()`: like `claim`'s insert, with a lease instead of a pg-boss job.
 * The holder renews the lease while it runs; once it has passed, the next claim of the section
 * (see `claimConflict`) or the reaper ends the row. Outcome `claimed`; else as `claim`.
 * $1 jid, $2 queue, $3 job type, $4 user id, $5 group, $6 lease seconds
 */
const SECTION_INSERT = `
  INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, lease_until,
                        started_at, created_at, updated_at /*fields:cols*/)
  VALUES ($1::uuid, $2::text, $3::text::"JobType", $4::text /*user_id*/, $5::text, 1, 1,
          clock_timestamp() + $6::float8 * interval '1 second',
          clock_timestamp(), clock_timestamp(), clock_timestamp() /*fields:section*/)
  ON CONFLICT DO NOTHING`;
export const claimSection: ClaimStatement = {
  plain: `${SECTION_INSERT}
  RETURNING 'claimed' AS outcome`,
  answering: `
WITH inserted AS (${SECTION_INSERT}
  RETURNING id
)
${conflictAnswer({ from: '(SELECT $1::uuid AS jid) x', userId: '$4::text /*user_id*/', group: '$5::text' })}
 WHERE NOT EXISTS (SELECT 1 FROM inserted)
UNION ALL
SELECT 'claimed', ${NO_CONFLICT} FROM inserted`,
};

/** $1 jid, $2 lease seconds */
export const renewLease = `
UPDATE job_logs
   SET lease_until = clock_timestamp() + $2::float8 * interval '1 second', updated_at = clock_timestamp()
 WHERE jid = $1::uuid AND state = 'started' AND lease_until IS NOT NULL
RETURNING id`;

/** An `onBusy: { wait }` job got its section after waiting since $3. $1 jid, $2 attempt, $3 since */
export const recordWaited = `
UPDATE job_logs SET waited_ms = ${msSince('$3::timestamptz')}::int
 WHERE jid = $1::uuid AND attempt = $2::int AND state = 'started'
RETURNING id`;

/**
 * A retry found no error of the attempt before it in its row: that attempt ended without settling
 * (worker killed, timed out, connection lost). Record pg-boss's reason for it, once.
 * Only for a row that began before this attempt was fetched ($4, pg-boss's started_on): a row this
 * attempt inserted (its earlier attempts were busy, or their claim failed) has nothing to add.
 * $4 null: any row (a job without a section writes its row after its handler, so an attempt that
 * ran and was lost left none, and its retry's claim inserts the row it then completes).
 * $1 jid, $2 the retry's attempt, $3 error (json), $4 this attempt's fetch time or null
 */
export const recordLostAttempt = `
UPDATE job_logs
   SET errors = ${appendError('errors', '$2::int - 1', '$3::jsonb')},
       error = $3::jsonb
 WHERE jid = $1::uuid AND attempt = $2::int AND state = 'started'
   AND ($4::timestamptz IS NULL OR started_at < $4::timestamptz)
   AND NOT jsonb_path_exists(errors, '$[*] ? (@.attempt == $a)', jsonb_build_object('a', $2::int - 1))
RETURNING id`;


/**
 * `retry` of a dead or failed job: its row is `started` again (and takes its section back) for the
 * attempt pg-boss will run; the clock starts again. $1 jid, $2 the note (json)
 */
export const reopenForRetry = `
WITH old AS (
  SELECT id, started_at FROM job_logs WHERE jid = $1::uuid AND state IN ('dead', 'failed') FOR UPDATE
), reopened AS (
  UPDATE job_logs j
     SET state = 'started', started_at = clock_timestamp(), finished_at = NULL, duration_ms = NULL,
         max_attempts = GREATEST(j.max_attempts, j.attempt + 1),
         errors = ${appendError('j.errors', 'j.attempt', '$2::jsonb')}, updated_at = clock_timestamp()
    FROM old
   WHERE j.id = old.id AND j.state IN ('dead', 'failed')
  RETURNING j.id, old.started_at
), stale AS (${markStale('reopened')})
SELECT id FROM reopened`;

/** Record an action in a row's history. $1 jid, $2 the note (json) */
export const noteAction = `
UPDATE job_logs SET errors = ${appendError('errors', 'attempt', '$2::jsonb')}, updated_at = clock_timestamp()
 WHERE jid = $1::uuid
RETURNING id`;

/**
 * The busy attempts (`onBusy: 'throw'`) before this one, which wrote no row: one `errors` entry
 * each, ahead of the row's own, each once, capped like appendError (the first and the latest
 * ERRORS_KEPT − 1). Also the row's `error` when it has none yet.
 * $1 jid, $2 this attempt (the row's), $3 jsonb array of { attempt, at, holderJid, error } (busy-history.ts)
 */
export const recordBusyAttempts = `
WITH fresh AS (
  SELECT b.* FROM job_logs j, (${busyEntries('$3::jsonb', '$2::int')}) b
   WHERE j.jid = $1::uuid AND j.attempt = $2::int
     AND NOT jsonb_path_exists(j.errors, '$[*] ? (@.attempt == $a)', jsonb_build_object('a', b.attempt))
), merged AS (
  SELECT (SELECT jsonb_agg(entry ORDER BY attempt) FROM fresh) || j.errors AS errors
    FROM job_logs j WHERE j.jid = $1::uuid
)
UPDATE job_logs j
   SET errors = ${cappedHistory('m.errors')},
       error = COALESCE(j.error, (SELECT error FROM fresh ORDER BY attempt DESC LIMIT 1)),
       updated_at = clock_timestamp()
  FROM merged m
 WHERE j.jid = $1::uuid AND j.attempt = $2::int AND EXISTS (SELECT 1 FROM fresh)
RETURNING j.id`;
