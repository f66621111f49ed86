// Each query of the API reads through an index, shown by PostgreSQL's own EXPLAIN on a log of
// 20,000 analysed rows. The statements are the ones the API really sends: a pass-through client
// records them.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { createJobLog, type PrismaLike } from '../src/index.ts';
import { countDoomed, deleteBatch } from '../src/maintenance/pruner.ts';
import * as sql from '../src/sql.ts';
import { makeRows } from '../scripts/lib/make-rows.ts';
import { setupTestDb } from './helpers/db.ts';

const db = setupTestDb('query_plans');
const DAY = 86_400_000;

interface Statement {
  sql: string;
  values: unknown[];
}

/** A client that passes every statement through to the real one and remembers the last. */
function recording(prisma: PrismaLike) {
  const seen: Statement[] = [];
  const client: PrismaLike = {
    $queryRawUnsafe: (sql: string, ...values: unknown[]) => {
      seen.push({ sql, values });
      return prisma.$queryRawUnsafe(sql, ...values);
    },
  };
  return { client, last: () => seen.at(-1)! };
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** The scans of job_logs in a statement's plan: `Index Scan:job_logs_…`, `Seq Scan`, … */
async function scans(statement: Statement, seqscan: boolean): Promise<string[]> {
  const client = await db.pool.connect();
  try {
    await client.query(`SET enable_seqscan = ${seqscan ? 'on' : 'off'}`);
    const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${statement.sql}`, statement.values);
    const out: string[] = [];
    const walk = (node: PlanNode) => {
      // A Bitmap Index Scan names only its index; the Bitmap Heap Scan above it names the table.
      const name = node['Index Name'];
      if (node['Relation Name'] === 'job_logs' || name?.startsWith('job_logs')) out.push(name ? `${node['Node Type']}:${name}` : node['Node Type']);
      node.Plans?.forEach(walk);
    };
    walk(rows[0]['QUERY PLAN'][0].Plan);
    return out;
  } finally {
    await client.query('RESET enable_seqscan');
    client.release();
  }
}

describe('query plans', () => {
  beforeAll(async () => {
    await db.boss(); // creates pg-boss's schema, which sections() joins
    await makeRows(db.pool, { rows: 20_000, days: 90, users: 500 });
  });

  test('find, stats, sections and prune each read job_logs through the index meant for them', async () => {
    const { client, last } = recording(db.prisma);
    const joblog = createJobLog({ prisma: client });
    const plan = async (run: () => Promise<unknown>, seqscan = true) => {
      await run();
      return scans(last(), seqscan);
    };
    const firstPage = await joblog.find();

    // With the planner free to choose: the hot paths.
    expect(await plan(() => joblog.find())).toEqual(['Index Scan:job_logs_started_id_idx']);
    expect(await plan(() => joblog.find({ cursor: firstPage.nextCursor }))).toEqual(['Index Scan:job_logs_started_id_idx']);
    expect((await plan(() => joblog.find({ userId: 'user-42' }))).join(' ')).toMatch(/Index Scan:job_logs_user_started_idx\b/);
    expect((await plan(() => joblog.find({ states: ['dead'] }))).join(' ')).toMatch(/Index Scan:job_logs_state_started_idx\b/);
    expect((await plan(() => joblog.stats({ since: new Date(Date.now() - DAY) }))).join(' ')).toMatch(/Index Scan:job_logs_started_id_idx\b/);
    expect((await plan(() => joblog.sections())).join(' ')).toMatch(/Index Scan:job_logs_(state_started_idx|section_key)\b/);
    const batch = { sql: deleteBatch, values: ['finished', new Date(Date.now() - 30 * DAY), null, 5000] };
    const pruned = await scans(batch, true);
    expect(pruned).toEqual(expect.arrayContaining(['Index Scan:job_logs_state_finished_idx', 'Index Scan:job_logs_pkey']));
    expect(pruned).not.toContain('Seq Scan');

    // A claim that found its section taken ends a holder whose lease passed: through the section index.
    const conflict = await scans({ sql: sql.claimConflict, values: [randomUUID(), 'user-42', 'financial'] }, true);
    expect(conflict.join(' ')).toMatch(/Index Scan:job_logs_section_key\b/);
    expect(conflict).not.toContain('Seq Scan');
    const input = Array.from({ length: 50 }, (_, i) => ({ i, jid: randomUUID(), user_id: `user-${i}`, group: 'financial' }));
    const conflicts = await scans({ sql: sql.claimConflicts, values: [JSON.stringify(input)] }, true);
    expect(conflicts.join(' ')).toMatch(/Index Scan:job_logs_section_key\b/);
    expect(conflicts).not.toContain('Seq Scan');
    // A claim of a contended section answers a busy section itself: the holder through the section index, the job's own row by jid.
    const jobs = input.map(({ jid, user_id, group }) => ({ jid, queue: 'q', job_type: 'reconciliation', user_id, group, attempt: 2, max_attempts: 3, queued_at: null }));
    for (const statement of [
      { sql: sql.claim.answering, values: [randomUUID(), 'q', 'reconciliation', 'user-42', 'financial', 1, 3, null] },
      { sql: sql.claimSection.answering, values: [randomUUID(), 'section', 'reconciliation', 'user-42', 'financial', 30] },
      { sql: sql.claimFirstAttempts.answering, values: [JSON.stringify(jobs)] },
      { sql: sql.claimBatch.answering, values: [JSON.stringify(jobs)] },
    ]) {
      const claimScans = await scans(statement, true);
      expect(claimScans.join(' ')).toMatch(/Index Scan:job_logs_section_key\b/);
      expect(claimScans.join(' ')).toMatch(/Index Scan:job_logs_jid_key\b/);
      expect(claimScans).not.toContain('Seq Scan');
    }

    // With sequential scans off: every other filter has an index to use.
    const noSeq = [
      await plan(() => joblog.find({ types: ['welcome_email'], since: new Date(Date.now() - DAY) }), false),
      await plan(() => joblog.find({ states: ['failed', 'dead'] }), false),
      await plan(() => joblog.find({ group: 'reports' }), false),
      await plan(() => joblog.stats({ since: new Date(Date.now() - 7 * DAY), bucket: '1 hour' }), false),
      await scans({ sql: countDoomed, values: [['finished', 'failed'], new Date(Date.now() - 30 * DAY)] }, false),
    ];
    for (const found of noSeq) {
      expect(found.length).toBeGreaterThan(0);
      for (const scan of found) expect(scan).not.toBe('Seq Scan');
    }
  });
});
