// Prometheus metrics, scraped as text and read back by an independent parser of the exposition
// format: the whole log's gauges from the database, this process's counters from its events.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import parse from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { describe, expect, test, vi } from 'vitest';
import { createDashboard, createJobLog, type MetricsRegistry } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('metrics');

type Families = ReturnType<typeof parse>;
/**
 * The parser folds a histogram's label sets into one, so histograms are read as untyped: each of
 * `<name>_bucket`, `_sum` and `_count` a family of its own, one sample per label set, every line still parsed.
 */
const read = (text: string): Families => parse(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'));
const scrape = async (registry: MetricsRegistry): Promise<Families> => read(await registry.metrics());
/** The samples of `name`: one histogram's `_bucket` lines come as a family per label set. */
const samples = (families: Families, name: string) => families.filter((f) => f.name === name).flatMap((f) => f.metrics);
const family = (families: Families, name: string) => families.find((f) => f.name === name);
/** The value of the sample of `name` whose labels include `labels`; undefined when there is none. */
function sample(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples(families, name).find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s === undefined ? undefined : Number(s.value ?? s.count);
}

/** A group as an app may name it: quotes, a backslash and an emoji, which the text format must escape. */
const HOSTILE_GROUP = 'ledger "eu" \\ 💶';

describe('metrics', () => {
  test('jobs by type and state, durations, busy sections, sections held: from real pg-boss batches, no user in any label', async () => {
    const { boss, joblog } = await tracked(db);
    const registry = await joblog.metrics();
    const [ok, dies] = [queueName('m-ok'), queueName('m-dies')];
    await boss.createQueue(ok);
    await boss.createQueue(dies, { retryLimit: 1, retryDelay: 0 });
    const held = await holdSection(joblog, 'u-m-held', HOSTILE_GROUP);
    const opts = { ...FAST, batchSize: 5, group: HOSTILE_GROUP, onBusy: 'skip', userId: (j: any) => j.data.userId } as const;
    await joblog.work(ok, { ...opts, type: 'report_export' }, async () => new Promise((r) => setTimeout(r, 30)));
    await joblog.work(dies, { ...opts, type: 'financial_data_import' }, async () => { throw new Error('no'); });
    const finished = await Promise.all([1, 2, 3].map((i) => boss.send(ok, { userId: `u-m-${i}` })));
    const dead = (await boss.send(dies, { userId: 'u-m-9' }))!;
    const skipped = (await boss.send(ok, { userId: 'u-m-held' }))!;
    for (const jid of [...finished, skipped]) await waitForBossState(db, jid!, ['completed']);
    await waitForBossState(db, dead, ['failed'], 20_000);

    // This process's counters come from events, after the writes: wait for the last of them.
    let m: Families = [];
    await waitFor('five settled rows counted', async () => {
      m = await scrape(registry);
      return (family(m, 'joblog_jobs_settled_total')?.metrics ?? []).reduce((n, s) => n + Number(s.value), 0) >= 5 || undefined;
    });
    expect(sample(m, 'joblog_log_up')).toBe(1);
    expect(sample(m, 'joblog_jobs_settled_total', { job_type: 'report_export', state: 'finished' })).toBe(3);
    expect(sample(m, 'joblog_jobs_settled_total', { job_type: 'report_export', state: 'skipped' })).toBe(1);
    expect(sample(m, 'joblog_jobs_settled_total', { job_type: 'financial_data_import', state: 'dead' })).toBe(1);
    expect(await registry.metrics()).toContain('# TYPE joblog_job_duration_seconds histogram');
    const finishedRuns = { job_type: 'report_export', state: 'finished' };
    expect(sample(m, 'joblog_job_duration_seconds_count', finishedRuns)).toBe(3);
    expect(sample(m, 'joblog_job_duration_seconds_sum', finishedRuns)).toBeGreaterThanOrEqual(0.09); // three handlers of 30 ms
    expect(sample(m, 'joblog_job_duration_seconds_bucket', { ...finishedRuns, le: '0.01' })).toBe(0);
    expect(sample(m, 'joblog_job_duration_seconds_bucket', { ...finishedRuns, le: '+Inf' })).toBe(3);
    expect(sample(m, 'joblog_section_busy_total', { job_type: 'report_export', group: HOSTILE_GROUP, policy: 'skip' })).toBe(1);

    // The whole log, from the database: every process's jobs of the last 24 h, the section held now.
    expect(sample(m, 'joblog_window_jobs', { job_type: 'report_export', state: 'finished' })).toBe(3);
    expect(sample(m, 'joblog_window_jobs', { job_type: 'financial_data_import', state: 'dead' })).toBe(1);
    expect(sample(m, 'joblog_window_jobs', { job_type: 'reconciliation', state: 'started' })).toBe(1); // the held section's row
    expect(sample(m, 'joblog_window_failure_ratio', { job_type: 'financial_data_import' })).toBe(1);
    expect(sample(m, 'joblog_window_duration_seconds', { job_type: 'report_export', quantile: '0.95' })).toBeGreaterThanOrEqual(0.03);
    expect(sample(m, 'joblog_sections_held', { group: HOSTILE_GROUP })).toBe(1);
    expect(sample(m, 'joblog_sections_stale', { group: HOSTILE_GROUP })).toBe(0);
    expect(sample(m, 'joblog_section_held_max_seconds', { group: HOSTILE_GROUP })).toBeGreaterThan(0);
    // The same counts as sections() lists, and as a dashboard whose job log can only list them counts them.
    const listed = (await joblog.sections()).filter((x) => x.group === HOSTILE_GROUP);
    expect(listed).toHaveLength(1);
    const listing = createDashboard({ joblog: { find: joblog.find.bind(joblog), stats: joblog.stats.bind(joblog), sections: joblog.sections.bind(joblog), get: joblog.get.bind(joblog) }, token: 'metrics-token-0123456789', metrics: true });
    const counted = read(await (await listing(new Request('http://app.test/metrics', { headers: { authorization: 'Bearer metrics-token-0123456789' } }))).text());
    expect(sample(counted, 'joblog_sections_held', { group: HOSTILE_GROUP })).toBe(1);
    expect(sample(counted, 'joblog_window_jobs', { job_type: 'report_export', state: 'finished' })).toBe(3);
    expect(family(counted, 'joblog_jobs_settled_total')).toBeUndefined(); // no events without a JobLog

    const labelNames = new Set(m.flatMap((f) => f.metrics.flatMap((s) => Object.keys(s.labels ?? {}))));
    expect([...labelNames].filter((l) => !['group', 'job_type', 'le', 'outcome', 'policy', 'quantile', 'state'].includes(l))).toEqual([]);
    expect((await registry.metrics()).includes('u-m-')).toBe(false); // users are never labels
    await held.release();
    await waitFor('the section freed', async () => (sample(await scrape(registry), 'joblog_sections_held', { group: HOSTILE_GROUP }) ?? 0) === 0 || undefined, 5000);
  });

  test('the app\'s own registry: metrics() fills it once, and a second log is refused rather than doubling the names', async () => {
    const registry = new Registry();
    const joblog = createJobLog({ prisma: db.prisma });
    expect(await joblog.metrics({ registry })).toBe(registry);
    expect(await joblog.metrics({ registry })).toBe(registry);
    expect((await registry.getMetricsAsJSON()).filter((x) => x.name === 'joblog_log_up')).toHaveLength(1);
    await expect(createJobLog({ prisma: db.prisma }).metrics({ registry })).rejects.toMatchObject({ code: 'METRICS_REGISTERED' });
    const other = await createJobLog({ prisma: db.prisma }).metrics({ registry, prefix: 'billing_joblog_' });
    expect(sample(await scrape(other), 'billing_joblog_log_up')).toBe(1);
    // However many gauges, one scrape is one read of the log: stats() once, and the sections
    // counted per group by the database (never listed: a log may hold thousands).
    const fresh = createJobLog({ prisma: db.prisma });
    const reads = [vi.spyOn(fresh, 'stats'), vi.spyOn(fresh, 'sections')];
    const uncached = await fresh.metrics({ cacheMs: 0, prefix: 'fresh_' });
    await uncached.metrics();
    expect(reads.map((r) => r.mock.calls.length)).toEqual([1, 0]);
    await uncached.metrics();
    expect(reads.map((r) => r.mock.calls.length)).toEqual([2, 0]); // cacheMs 0: the next scrape reads again
    await expect(joblog.metrics({ prefix: 'job-log' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('prefix') });
    await expect(joblog.metrics({ window: '1 fortnight' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('window') });
  });

  test('a log that cannot be read scrapes as log_up 0 with empty gauges (never stale ones), reported as a warning', async () => {
    const joblog = createJobLog({ prisma: db.prisma, table: 'no_such_job_logs' });
    const warnings: string[] = [];
    joblog.on('warning', (w) => warnings.push(w.code));
    const m = await scrape(await joblog.metrics({ cacheMs: 0 }));
    expect(sample(m, 'joblog_log_up')).toBe(0);
    expect(family(m, 'joblog_window_jobs')?.metrics ?? []).toEqual([]);
    expect(family(m, 'joblog_sections_held')?.metrics ?? []).toEqual([]);
    expect(warnings).toContain('METRICS_READ_FAILED');
  });

  test('the reaper\'s and the pruner\'s work is counted: a row the reaper set dead counts like one a worker did', async () => {
    const boss = await db.boss();
    const joblog = createJobLog({ prisma: db.prisma, boss, reaper: { intervalSeconds: 0.2 }, prune: { olderThan: '1ms', intervalSeconds: 1, states: ['dead'] }, summaries: false });
    const registry = await joblog.metrics();
    // A started row whose pg-boss job does not exist: its holder is gone, the reaper ends it.
    const { rows: [gone] } = await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, state, user_id, "group", attempt, max_attempts, started_at)
       VALUES (gen_random_uuid(), 'gone', 'financial_data_import', 'started', 'u-m-gone', 'financial', 1, 1, now() - interval '1 hour') RETURNING jid`);
    let m: Families = [];
    await waitFor('the reaped and pruned rows counted', async () => {
      m = await scrape(registry);
      return (sample(m, 'joblog_pruned_rows_total') ?? 0) >= 1 || undefined;
    }, 10_000);
    expect(sample(m, 'joblog_reaper_rows_total', { outcome: 'dead' })).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'joblog_jobs_settled_total', { job_type: 'financial_data_import', state: 'dead' })).toBeGreaterThanOrEqual(1);
    expect((await db.pool.query('SELECT 1 FROM job_logs WHERE jid = $1', [gone.jid])).rowCount).toBe(0);
    joblog.stop();
  });

  test('the dashboard serves /metrics behind its token, in the exposition format; without the option there is no such page', async () => {
    const joblog = createJobLog({ prisma: db.prisma });
    const token = 'metrics-token-0123456789';
    const dashboard = createDashboard({ joblog, token, metrics: true, basePath: '/admin/jobs' });
    const url = 'http://app.test/admin/jobs/metrics';
    expect((await dashboard(new Request(url))).status).toBe(401);
    expect((await dashboard(new Request(url, { headers: { authorization: 'Bearer wrong-token-0123456789' } }))).status).toBe(403);
    const response = await dashboard(new Request(url, { headers: { authorization: `Bearer ${token}` } }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = read(await response.text());
    expect(sample(m, 'joblog_log_up')).toBe(1);
    expect(family(m, 'joblog_jobs_settled_total')).toBeDefined(); // a JobLog: this process's counters too

    const appRegistry = new Registry();
    await joblog.metrics({ registry: appRegistry, prefix: 'app_joblog_' });
    const served = createDashboard({ joblog, token, metrics: appRegistry });
    expect(read(await (await served(new Request('http://app.test/metrics', { headers: { authorization: `Bearer ${token}` } }))).text())
      .map((f) => f.name)).toContain('app_joblog_log_up');
    const plain = createDashboard({ joblog, token });
    expect((await plain(new Request('http://app.test/metrics', { headers: { authorization: `Bearer ${token}` } }))).status).toBe(404);
  });

  test('without prom-client installed, metrics() and the dashboard\'s /metrics say what to install', async () => {
    const script = `const { createJobLog } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});
      const { createDashboard } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});
      const joblog = createJobLog({ prisma: { $queryRawUnsafe() {} } });
      try { await joblog.metrics(); console.log('no error'); }
      catch (error) { console.log(error.code + ': ' + error.message); }
      const dashboard = createDashboard({ joblog, token: 'metrics-token-0123456789', metrics: true, onError: () => {} });
      const r = await dashboard(new Request('http://app.test/metrics', { headers: { authorization: 'Bearer metrics-token-0123456789' } }));
      console.log(r.status, r.headers.get('content-type'), (await r.text()).trim());`;
    const hook = new URL('./fixtures/no-peers/hide-peers.mjs', import.meta.url).pathname;
    const env = { ...process.env, HIDE_PEERS: 'prom-client' };
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', hook, '--input-type=module', '-e', script], { env });
    expect(stdout.trim().split('\n')).toEqual([
      'MISSING_PEER: metrics need prom-client, an optional peer dependency: npm install prom-client',
      // the dashboard's /metrics answers a scraper in text, not with its HTML error page
      '500 text/plain; charset=utf-8 metrics need prom-client, an optional peer dependency: npm install prom-client',
    ]);
  });
});
