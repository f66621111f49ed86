// The log written by hand, as a user would port the seed's pattern instead of adopting the
// library: per job, one INSERT of the `started` row before the work and one UPDATE after it,
// through a pg.Pool, autocommit, no batching, into the same job_logs table. pg-boss gets the
// same work() options as the untracked worker (no includeMetadata, no perJobResults): a failed
// job throws and pg-boss fails the batch.
import type pg from 'pg';
import type { Job } from 'pg-boss';

// The queue's retryLimit is 1 (fillQueue), so a job has at most two attempts; without
// includeMetadata a hand-written worker knows neither the attempt nor when the job was queued.
const INSERT_STARTED = `
INSERT INTO job_logs (jid, queue, job_type, user_id, "group", max_attempts)
VALUES ($1, $2, 'report_export', $3, $4, 2)`;

const SETTLE = `
UPDATE job_logs
   SET state = $2::"JobState", error = $3::jsonb, finished_at = now(), updated_at = now(),
       duration_ms = extract(epoch FROM now() - started_at) * 1000
 WHERE jid = $1`;

type BenchJob = Job<{ userId: string }>;

/** The handler of the hand-written worker around `work`; `group` null writes rows that take no section. */
export function handWrittenHandler(pool: pg.Pool, queue: string, group: string | null, work: (job: BenchJob) => Promise<void>) {
  return async (jobs: BenchJob[]): Promise<void> => {
    for (const job of jobs) {
      await pool.query(INSERT_STARTED, [job.id, queue, job.data.userId, group]);
      try {
        await work(job);
      } catch (error) {
        await pool.query(SETTLE, [job.id, 'failed', JSON.stringify({ message: String(error) })]);
        throw error;
      }
      await pool.query(SETTLE, [job.id, 'finished', null]);
    }
  };
}
