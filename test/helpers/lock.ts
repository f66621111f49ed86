// A lock held by another connection makes every read of job_logs wait: a query that runs as
// long as the test wants, without a big table.
import type pg from 'pg';

export interface TableLock {
  /** Lets the waiting reads go on. Safe to call twice. */
  release(): Promise<void>;
}

export async function lockJobLogs(pool: pg.Pool): Promise<TableLock> {
  const client = await pool.connect();
  await client.query('BEGIN; LOCK TABLE job_logs IN ACCESS EXCLUSIVE MODE');
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await client.query('ROLLBACK');
      client.release();
    },
  };
}

/** Statements of this database that wait on a lock: reads stuck behind `lockJobLogs`. */
export async function waitingOnLocks(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0].n;
}
