// An independent witness of critical sections: handlers record when they enter and leave in a
// table of their own, through a connection of their own, so overlaps are found without
// trusting the job log under test.
import type pg from 'pg';

export async function createWitness(pool: pg.Pool): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS witness (
    id bigserial PRIMARY KEY, jid text NOT NULL, user_id text NOT NULL, "group" text NOT NULL,
    entered timestamptz NOT NULL, exited timestamptz)`);
}

/** Wraps a handler body: records entry and exit with the database clock. */
export async function witnessed<R>(
  pool: pg.Pool,
  entry: { jid: string; userId: string; group: string },
  body: () => Promise<R>,
): Promise<R> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO witness (jid, user_id, "group", entered) VALUES ($1, $2, $3, clock_timestamp()) RETURNING id`,
    [entry.jid, entry.userId, entry.group],
  );
  try {
    return await body();
  } finally {
    await pool.query(`UPDATE witness SET exited = clock_timestamp() WHERE id = $1`, [rows[0]!.id]);
  }
}

/** Pairs of witnessed runs of one (user, group) whose time ranges overlap. */
export async function overlaps(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`
    SELECT count(*) AS n FROM witness a JOIN witness b
      ON a.user_id = b.user_id AND a."group" = b."group" AND a.id < b.id
     WHERE tstzrange(a.entered, a.exited) && tstzrange(b.entered, b.exited)`);
  return Number(rows[0]!.n);
}

export async function witnessCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM witness WHERE exited IS NOT NULL`);
  return Number(rows[0]!.n);
}
