// A claim that finds its section held learns who holds it from the claiming statement itself, one
// round trip, once the store has seen that section busy (before, the plain insert, cheaper to plan,
// and a look-up after it). Witnessed by counting the statements the store sends through its SQL runner.
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { LogStore, type JobIdentity, type SqlRunner } from '../src/store.ts';
import { setupTestDb } from './helpers/db.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('busy-claims');

const identity = (over: Partial<JobIdentity>): JobIdentity => ({
  jid: randomUUID(), queue: 'q', type: 'reconciliation', userId: null, group: null,
  attempt: 1, maxAttempts: 3, queuedAt: null, ...over,
});

/**
 * A store whose statements are counted (the first line of each, to tell them apart in a failure).
 * `afterNext(fn)`: run `fn` once after the next statement answered, before the store sees the answer.
 */
function countingStore() {
  const sent: string[] = [];
  let pending: (() => Promise<void>) | undefined;
  const query: SqlRunner = async (statement, values) => {
    sent.push(statement.trim().split('\n')[0]!);
    const rows = (await db.prisma.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...values)) ?? [];
    const run = pending;
    pending = undefined;
    if (run) await run();
    return rows;
  };
  const afterNext = (fn: () => Promise<void>) => { pending = fn; };
  return { store: new LogStore(db.prisma, { query }), sent, reset: () => sent.splice(0), afterNext };
}

const isLookUp = (first: string) => first.includes('lapsed AS');

/** `store` finds the section (userId, 'g') held once, and the holder leaves: the section counts as contended. */
async function contend(store: LogStore, userId: string): Promise<void> {
  const holder = identity({ userId, group: 'g' });
  expect(await store.claimSection(holder, 30)).toEqual({ outcome: 'claimed' });
  expect(await store.claimSection(identity({ userId, group: 'g' }), 30)).toEqual({ outcome: 'busy', holderJid: holder.jid });
  expect(await store.finish(holder.jid, 1)).toBe(true);
}

const insertHolder = `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts)
  VALUES ($1, 'q', 'reconciliation', $2, 'g', 1, 1)`;

/** Until a claim waits for another transaction's entry in the section index. */
function waitForBlockedClaim(): Promise<boolean> {
  return waitFor('the claim to wait for the holder', async () => {
    const { rows } = await db.pool.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%job_logs%'`);
    return rows.length > 0;
  }, 10_000);
}

describe('a busy claim in one statement', () => {
  test('a section seen busy: section(), a worker\'s claim and a batch claim each come back busy with the holder\'s jid from one statement', async () => {
    const { store, sent, reset } = countingStore();
    const holder = identity({ userId: 'u-held', group: 'g' });
    expect(await store.claimSection(holder, 30)).toEqual({ outcome: 'claimed' });
    expect(sent).toHaveLength(1);

    // Not yet seen busy: the plain insert, then the look-up.
    reset();
    expect(await store.claimSection(identity({ userId: 'u-held', group: 'g' }), 30)).toEqual({ outcome: 'busy', holderJid: holder.jid });
    expect(sent.map(isLookUp)).toEqual([false, true]);

    reset();
    expect(await store.claimSection(identity({ userId: 'u-held', group: 'g' }), 30)).toEqual({ outcome: 'busy', holderJid: holder.jid });
    expect(sent).toHaveLength(1);

    reset();
    expect(await store.claim(identity({ userId: 'u-held', group: 'g', attempt: 2 }))).toEqual({ outcome: 'busy', holderJid: holder.jid });
    expect(sent).toHaveLength(1);

    reset();
    const first = identity({ userId: 'u-mates', group: 'g' });
    const mate = identity({ userId: 'u-mates', group: 'g' });
    const outcomes = await store.claimBatch([identity({ userId: 'u-held', group: 'g' }), first, mate, identity({ userId: 'u-free', group: 'g' })]);
    expect(sent).toHaveLength(1);
    expect(outcomes[0]).toEqual({ outcome: 'busy', holderJid: holder.jid });
    // Two jobs of one statement in one section: the loser is told the winner, which that statement's snapshot does not show.
    const winner = outcomes[1]!.outcome === 'claimed' ? first : mate;
    expect([outcomes[1], outcomes[2]]).toEqual(expect.arrayContaining([{ outcome: 'claimed' }, { outcome: 'busy', holderJid: winner.jid }]));
    expect(outcomes[3]).toEqual({ outcome: 'claimed' });

    // A section nobody contends is claimed by the plain insert: no answer was planned for it.
    reset();
    expect(await store.claimSection(identity({ userId: 'u-quiet', group: 'g' }), 30)).toEqual({ outcome: 'claimed' });
    expect(sent).toEqual([expect.not.stringContaining('WITH')]);
  });

  test('the job\'s own row decides before the section: stale, settled, or claimed by a lost earlier answer, each from one statement', async () => {
    const { store, sent, reset } = countingStore();
    await contend(store, 'u-own');
    const newer = identity({ userId: 'u-own', group: 'g', attempt: 2 });
    expect(await store.claim(newer)).toEqual({ outcome: 'claimed' });
    reset();
    expect(await store.claim({ ...newer, attempt: 1 })).toEqual({ outcome: 'stale', ownAttempt: 2 });
    // The same attempt again: an earlier try wrote the row and its answer was lost.
    expect(await store.claim(newer)).toEqual({ outcome: 'claimed' });
    expect(await store.claimBatch([{ ...newer, attempt: 1 }, newer])).toEqual([{ outcome: 'stale', ownAttempt: 2 }, { outcome: 'claimed' }]);
    expect(sent).toHaveLength(3);

    expect(await store.finish(newer.jid, 2)).toBe(true);
    // Another job holds the section now; the job's own settled row still decides.
    const other = identity({ userId: 'u-own', group: 'g' });
    expect(await store.claim(other)).toEqual({ outcome: 'claimed' });
    reset();
    expect(await store.claim({ ...newer, attempt: 3 })).toEqual({ outcome: 'settled', state: 'finished' });
    expect(await store.claimBatch([{ ...newer, attempt: 3 }])).toEqual([{ outcome: 'settled', state: 'finished' }]);
    expect(sent).toHaveLength(2);
  });

  test.each([false, true])('a holder whose lease has passed costs the look-up that ends it, then the claim wins (section seen busy: %s)', async (seen) => {
    const { store, sent, reset } = countingStore();
    const userId = `u-lapsed-${seen}`;
    if (seen) await contend(store, userId);
    reset();
    const crashed = randomUUID();
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, lease_until)
       VALUES ($1, 'section', 'reconciliation', $2, 'g', 1, 1, now() - interval '1 second')`, [crashed, userId]);
    expect(await store.claimSection(identity({ userId, group: 'g' }), 30)).toEqual({ outcome: 'claimed' });
    expect(sent.map(isLookUp)).toEqual([false, true, false]);
    const { rows } = await db.pool.query(`SELECT state::text, error->>'code' AS code FROM job_logs WHERE jid = $1`, [crashed]);
    expect(rows).toEqual([{ state: 'dead', code: 'LEASE_EXPIRED' }]);
  });

  test('a holder that commits while the claim waits on its index entry is not in the claim\'s snapshot: the second try names it', async () => {
    const { store, sent, reset } = countingStore();
    await contend(store, 'u-racing');
    reset();
    const holder = await db.pool.connect();
    const holderJid = randomUUID();
    try {
      await holder.query('BEGIN');
      await holder.query(insertHolder, [holderJid, 'u-racing']);
      const claim = store.claimSection(identity({ userId: 'u-racing', group: 'g' }), 30);
      await waitForBlockedClaim();
      await holder.query('COMMIT');
      expect(await claim).toEqual({ outcome: 'busy', holderJid });
      expect(sent.map(isLookUp)).toEqual([false, false]);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });

  test('a holder that leaves between the answer that saw none and the next try: that try claims', async () => {
    const holder = await db.pool.connect();
    const holderJid = randomUUID();
    try {
      // The holder commits after the claim's snapshot (its answer sees no holder) and leaves before the second try.
      const { store, sent, reset, afterNext } = countingStore();
      await contend(store, 'u-leaving');
      reset();
      afterNext(() => db.pool.query(`UPDATE job_logs SET state = 'finished' WHERE jid = $1`, [holderJid]).then(() => {}));
      await holder.query('BEGIN');
      await holder.query(insertHolder, [holderJid, 'u-leaving']);
      const claim = store.claimSection(identity({ userId: 'u-leaving', group: 'g' }), 30);
      await waitForBlockedClaim();
      await holder.query('COMMIT');
      expect(await claim).toEqual({ outcome: 'claimed' });
      expect(sent.map(isLookUp)).toEqual([false, false]);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });
});
