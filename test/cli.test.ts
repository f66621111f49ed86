// The joblog CLI run as a child process, as a user or a script runs it.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { setupTestDb } from './helpers/db.ts';
import { lockJobLogs } from './helpers/lock.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('cli');
const MAIN = path.resolve(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const DAY = 86_400_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `joblog …args` against the test database (unless env says otherwise); stdout is a pipe. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], {
      env: { ...process.env, DATABASE_URL: db.url, TZ: 'UTC', JOBLOG_DEBUG: undefined, ...env },
      timeout: 20_000,
    }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

// Every run starts Node and, for most, Prisma: 0.25–0.8 s of CPU each (docs/cli.md). A dozen
// at once on a busy 2-core machine took so long that execFile's timeout killed some of them.
const AT_ONCE = 2;

/** Runs the CLI calls, at most AT_ONCE at a time; the results in the calls' order. */
async function limited<Calls extends readonly (() => Promise<Run>)[]>(calls: Calls): Promise<{ -readonly [K in keyof Calls]: Run }> {
  const runs: Run[] = [];
  let next = 0;
  const lane = async () => {
    while (next < calls.length) {
      const i = next++;
      runs[i] = await calls[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, calls.length) }, lane));
  return runs as { -readonly [K in keyof Calls]: Run };
}

const json = (run: Run) => {
  expect(run.stderr, run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout);
};

/** A usage or runtime failure: one line on stderr, no stack trace, nothing on stdout. */
function failed(run: Run, code: number, message: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(message);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

const jids = { failedJob: randomUUID(), finished: randomUUID(), heldGone: randomUUID(), started: randomUUID() };

beforeAll(async () => {
  await db.boss(); // pg-boss's schema, for sections and reap
  const now = Date.now();
  // Attempt 1 as rows were stored before the stack's header line was dropped, attempt 2 as they are now.
  const error = (attempt: number, message: string) => ({ attempt, at: new Date(now - 40 * DAY).toISOString(), error: { name: 'Error', message, stack: `${attempt === 1 ? `Error: ${message}\n` : ''}    at importFile (app.ts:1:1)` } });
  const rows = [
    // jid, type, state, user, group, started days ago, duration, errors, queued
    [jids.failedJob, 'financial_data_import', 'dead', 'u1', 'financial', 40, 1500, [error(1, 'bank API timeout'), error(2, 'bank API 503')], true],
    [jids.finished, 'report_export', 'finished', 'u1', 'reports', 40, 200, [], true],
    [randomUUID(), 'report_export', 'finished', 'u2', 'reports', 35, 400, [], true],
    [randomUUID(), 'welcome_email', 'skipped', 'u2', null, 33, 0, [], true],
    [randomUUID(), 'welcome_email', 'finished', 'u3', null, 1, 50, [], true],
    [jids.started, 'reconciliation', 'started', 'u3', 'financial', 20, null, [], true],
    // holds a section, but its pg-boss job does not exist: stale, and the reaper's to settle
    [jids.heldGone, 'reconciliation', 'started', 'u4', 'financial', 2, null, [], true],
  ] as const;
  for (const [jid, type, state, user, group, daysAgo, duration, errors, queued] of rows) {
    const startedAt = new Date(now - daysAgo * DAY);
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, state, user_id, "group", attempt, max_attempts, queued_at, started_at,
                             finished_at, duration_ms, error, errors)
       VALUES ($1, replace($2, '_', '-'), $2::text::"JobType", $3::"JobState", $4, $5, $6, 3, $7, $8, $9, $10, $11, $12)`,
      [jid, type, state, user, group, Math.max(1, errors.length), queued ? startedAt : null, startedAt,
        duration === null ? null : new Date(startedAt.getTime() + duration), duration,
        errors.length ? JSON.stringify(errors.at(-1)!.error) : null, JSON.stringify(errors)],
    );
  }
});

// A test runs up to seven CLI processes one or two at a time; at load 14 on 2 cores one took up to
// 4 s, so a test gets more than the suite's 30 s.
describe('joblog CLI', { timeout: 90_000 }, () => {
  test('list: JSON when piped, filters as flags, keyset pages with --cursor', async () => {
    const all = json(await cli(['list']));
    expect(all.rows).toHaveLength(7);
    expect(all.nextCursor).toBeNull();
    const u1 = json(await cli(['list', '--user', 'u1', '--state', 'dead,finished', '--type', 'financial_data_import', '--type', 'report_export']));
    // both started at the same moment: the later row (higher id) comes first
    expect(u1.rows.map((r: { jid: string }) => r.jid)).toEqual([jids.finished, jids.failedJob]);
    const first = json(await cli(['list', '--limit', '4', '--since', '45d']));
    expect(first.rows).toHaveLength(4);
    const second = json(await cli(['list', '--limit', '4', '--since', '45d', '--cursor', first.nextCursor]));
    expect(second.nextCursor).toBeNull();
    expect([...first.rows, ...second.rows].map((r: { jid: string }) => r.jid)).toEqual(
      all.rows.filter((r: { startedAt: string }) => Date.parse(r.startedAt) >= Date.now() - 45 * DAY).map((r: { jid: string }) => r.jid),
    );
    expect(typeof all.rows[0].id).toBe('string'); // bigint ids as strings
  });

  test('list --table: aligned columns, dates in local time or --utc', async () => {
    const local = await cli(['list', '--table', '--user', 'u1'], { TZ: 'Asia/Tokyo' });
    expect(local.code).toBe(0);
    const [header, ...lines] = local.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^STARTED\s+JID\s+TYPE\s+STATE\s+USER\s+GROUP\s+TRY\s+DURATION\s+ERROR$/);
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).toContain('bank API 503');
    const utc = await cli(['list', '--table', '--user', 'u1', '--utc'], { TZ: 'Asia/Tokyo' });
    const stamp = (out: string) => /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ?)/m.exec(out.split('\n')[1]!)![1]!;
    expect(stamp(utc.stdout)).toMatch(/Z$/);
    // Tokyo is 9 hours ahead of UTC
    const hours = (Date.parse(stamp(local.stdout).replace(' ', 'T') + 'Z') - Date.parse(stamp(utc.stdout).replace(' ', 'T'))) / 3_600_000;
    expect(hours).toBe(9);
  });

  test("show: the row and each attempt's error; exit 3 when missing, 2 for a bad id", async () => {
    const row = json(await cli(['show', jids.failedJob]));
    expect(row).toMatchObject({ jid: jids.failedJob, state: 'dead', userId: 'u1', attempt: 2 });
    expect(row.errors.map((e: { error: { message: string } }) => e.error.message)).toEqual(['bank API timeout', 'bank API 503']);
    const text = await cli(['show', jids.failedJob, '--table']);
    expect(text.stdout).toMatch(/^state\s+dead$/m);
    expect(text.stdout).toMatch(/attempt 1 failed at .*: Error: bank API timeout\n\s+at importFile/);
    expect(text.stdout).toMatch(/attempt 2 failed at .*: Error: bank API 503\n\s+at importFile/);
    failed(await cli(['show', randomUUID()]), 3, /no job .* in the log/);
    failed(await cli(['show', 'nope']), 2, /joblog show: <jid>: expected a UUID/);
    failed(await cli(['show']), 2, /give the job id/);
  });

  test('stats and sections as JSON', async () => {
    const stats = json(await cli(['stats', '--since', '60d', '--bucket', '1 week']));
    const byType = Object.fromEntries(stats.byType.map((t: { jobType: string }) => [t.jobType, t]));
    expect(byType.report_export).toMatchObject({ total: 2, failureRate: 0, p50Ms: 300, maxMs: 400 });
    expect(byType.financial_data_import).toMatchObject({ total: 1, counts: { dead: 1 }, failureRate: 1 });
    expect(stats.buckets.reduce((n: number, b: { total: number }) => n + b.total, 0)).toBe(7);
    const held = json(await cli(['sections']));
    expect(held.map((s: { userId: string; stale: boolean; bossState: null }) => [s.userId, s.bossState, s.stale])).toEqual([
      ['u3', null, true],
      ['u4', null, true],
    ]);
    const table = await cli(['sections', '--table']);
    expect(table.stdout).toMatch(/^USER\s+GROUP\s+HOLDER/);
    expect(table.stdout).toContain('STALE');
  });

  test('list --table and show --table print control characters as visible escapes; JSON keeps the bytes', async () => {
    const jid = randomUUID();
    const user = 'eve\x1b]0;pwned\x07\x1b[2J\r';
    const message = 'boom \x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ \x9b31m\x7f\tend';
    const error = { name: 'Error', message, stack: `Error: ${message}\n    at \x1b[1mhandler (app.ts:1:1)` };
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, state, user_id, attempt, max_attempts, started_at, finished_at, duration_ms, error, errors)
       VALUES ($1, 'q', 'reconciliation', 'failed', $2, 1, 1, now() - interval '100 days', now() - interval '100 days', 1, $3::jsonb, $4::jsonb)`,
      [jid, user, JSON.stringify(error), JSON.stringify([{ attempt: 1, at: new Date().toISOString(), error }])],
    );
    try {
      const controls = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
      const list = await cli(['list', '--table', '--jid', jid]);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).not.toMatch(controls);
      expect(list.stdout).toContain('eve\\x1b]0;pwned\\x07\\x1b[2J\\r');
      expect(list.stdout).toContain('boom \\x1b]8;;http://evil.example\\x1b\\click');
      const show = await cli(['show', jid, '--table']);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).not.toMatch(controls);
      expect(show.stdout).toMatch(/^user\s+eve\\x1b\]0;pwned\\x07/m);
      expect(show.stdout).toContain('\\x9b31m\\x7f\\tend');
      expect(show.stdout).toContain('at \\x1b[1mhandler');
      expect(json(await cli(['show', jid])).userId).toBe(user);
    } finally {
      await db.pool.query('DELETE FROM job_logs WHERE jid = $1', [jid]);
    }
  });

  test('a read that outlives --statement-timeout is cancelled: exit 1 naming the flag', async () => {
    const lock = await lockJobLogs(db.pool);
    try {
      failed(await cli(['list', '--statement-timeout', '50']), 1, /^joblog list: .*ran longer than 50 ms and was cancelled.*--statement-timeout/);
      failed(await cli(['stats', '--statement-timeout', 'soon']), 2, /--statement-timeout: expected a positive integer/);
    } finally {
      await lock.release();
    }
  });

  test('wrong flags and values: exit 2 with one line naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['list', '--colour'], /^joblog list: unknown flag --colour/],
      [['list', '--limit'], /--limit needs a value/],
      [['list', '--limit', 'ten'], /--limit: expected a positive integer, got 'ten'/],
      [['list', '--limit', '900'], /--limit: at most 500/],
      [['list', '--state', 'running'], /--state: expected one of started, finished, failed, dead, skipped/],
      [['list', '--since', 'last tuesday'], /--since: expected a duration such as 24h/],
      [['list', '--cursor', 'abc'], /--cursor: not a cursor/],
      [['stats', '--bucket', 'fortnight'], /--bucket: expected '<n> minute/],
      [['prune'], /--older-than is required/],
      [['prune', '--older-than', '30d', '--states', 'started'], /--states: .*started rows are never pruned/],
      [['dashboard', '--port', 'http'], /--port: expected 0 to 65535/],
      [['frobnicate'], /^joblog: unknown command 'frobnicate'/],
      [['list', 'extra'], /unexpected argument/],
    ];
    const runs = await limited(cases.map(([args]) => () => cli(args)));
    runs.forEach((run, i) => failed(run, 2, cases[i]![1]));
  });

  test("the library's input rules: exit 2 naming the flag, never a database error", async () => {
    const forged = Buffer.from('2026-01-01T00:00:00.000Z|99999999999999999999999').toString('base64url');
    const cases: [string[], RegExp][] = [
      [['list', '--type', 'no_such_type'], /--type: unknown job type 'no_such_type'; expected one of financial_data_import, /],
      [['list', '--user', ' u1 '], /--user: must not start or end with white space/],
      [['list', '--since', '2026-02-30'], /--since: 2026-02-30 is not a day of the calendar/],
      [['list', '--cursor', forged], /--cursor: not a cursor/],
      [['stats', '--bucket', '99999999999999999999 weeks'], /--bucket: must be at most a year/],
      [['prune', '--older-than', '99999999999d'], /--older-than: must be at most 50 years/],
    ];
    const runs = await limited(cases.map(([args]) => () => cli(args)));
    runs.forEach((run, i) => failed(run, 2, cases[i]![1]));
  });

  test('no database, a bad URL, an unreachable server: a clear message, exit 2 or 1', async () => {
    const [none, bad, down] = await limited([
      () => cli(['list'], { DATABASE_URL: undefined }),
      () => cli(['list', '--database-url', 'mysql://x@y/z']),
      () => cli(['list', '--database-url', 'postgres://postgres@127.0.0.1:1/nothing']),
    ] as const);
    failed(none, 2, /set DATABASE_URL or pass --database-url/);
    failed(bad, 2, /--database-url: expected a postgres:\/\/ URL/);
    failed(down, 1, /^joblog list: cannot connect to the database: .*127\.0\.0\.1:1/);
  });

  test('prune: dry run counts, a real run deletes in batches with progress, started rows stay', async () => {
    const dry = json(await cli(['prune', '--older-than', '15d', '--dry-run']));
    expect(dry).toMatchObject({ deleted: 4, dryRun: true });
    const run = await cli(['prune', '--older-than', '15d', '--batch-size', '1', '--progress']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ deleted: 4, batches: 4, dryRun: false, interrupted: false });
    expect(run.stderr).toMatch(/\[#{30}\] 100% 4\/4 pruned/);
    const { rows } = await db.pool.query(`SELECT jid::text FROM job_logs WHERE started_at < now() - interval '15 days'`);
    expect(rows.map((r) => r.jid)).toEqual([jids.started]);
  });

  test('reap settles the row whose pg-boss job is gone', async () => {
    const result = json(await cli(['reap']));
    expect(result).toMatchObject({ dead: 2 });
    expect(json(await cli(['sections']))).toEqual([]);
    expect(json(await cli(['show', jids.heldGone]))).toMatchObject({ state: 'dead' });
  });

  test('dashboard: serves on 127.0.0.1 with the token, refuses without it, --metrics and --actions, stops on SIGINT', async () => {
    const token = 'a-test-token-of-32-characters-xx';
    const child = spawn(process.execPath, [MAIN, 'dashboard', '--port', '0', '--metrics', '--actions'], {
      env: { ...process.env, DATABASE_URL: db.url, JOBLOG_DASHBOARD_TOKEN: token },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const url = await waitFor('the dashboard URL', async () => /on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1], 15_000);
      expect((await fetch(url)).status).toBe(401);
      const page = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('</html>');
      const metrics = await fetch(new URL('metrics', url), { headers: { authorization: `Bearer ${token}` } });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^joblog_log_up 1$/m);
      expect((await fetch(new URL('metrics', url))).status).toBe(401);
      const [dead] = json(await cli(['list', '--state', 'dead'])).rows;
      const deadPage = await fetch(new URL(`jobs/${dead.jid}`, url), { headers: { authorization: `Bearer ${token}` } });
      expect(await deadPage.text()).toContain('data-action="retry"');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
