// The dashboard's actions over HTTP: read-only unless the app turns them on; the buttons a row
// offers; a POST with the session's token acts and redirects back with the outcome; forged and
// replayed forms are refused; `by` is the app's actor. And the overview a person keeps open:
// its refresh, its per-type charts and its "needs attention" list, from few reads.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDashboard, InvalidOptionsError, serve, type DashboardOptions, type JobLog, type ServedDashboard } from '../src/index.ts';
import { typeBarsChart } from '../src/dashboard/chart.ts';
import { formatDuration } from '../src/dashboard/format.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, tracked, waitForRow } from './helpers/joblog.ts';

const db = setupTestDb('dashboard_actions');
const TOKEN = 'actions-token-0123456789abcdef';
const bearer = { authorization: `Bearer ${TOKEN}` };

let joblog: JobLog;
let served: ServedDashboard;
let failing = true;
const holds = { live: gate(), stale: gate() };
const jids = {} as { dead: string; finished: string; live: string; stale: string };

/** A browser of sorts: keeps the cookies the dashboard sets and sends them back. */
class Visitor {
  readonly cookies = new Map<string, string>();

  readonly base: string;
  readonly headers: Record<string, string>;

  constructor(base: string, headers: Record<string, string> = bearer) {
    this.base = base;
    this.headers = headers;
  }

  get origin(): string {
    return new URL(this.base).origin;
  }

  async get(path: string): Promise<{ status: number; body: string; location: string | null }> {
    const res = await fetch(new URL(path, this.base), { redirect: 'manual', headers: { ...this.headers, cookie: this.#cookie() } });
    this.#keep(res);
    return { status: res.status, body: await res.text(), location: res.headers.get('location') };
  }

  async post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(new URL(path, this.base), {
      method: 'POST',
      redirect: 'manual',
      headers: { ...this.headers, origin: this.origin, 'content-type': 'application/x-www-form-urlencoded', cookie: this.#cookie(), ...headers },
      body: new URLSearchParams(fields).toString(),
    });
    this.#keep(res);
    return { status: res.status, body: await res.text(), location: res.headers.get('location') };
  }

  #cookie(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  #keep(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      if (/Max-Age=0(;|$)/.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(eq + 1));
    }
  }
}

interface Form {
  path: string;
  action: string;
  fields: Record<string, string>;
}

/** The action forms of a page, as a browser would submit them. */
function formsOf(body: string): Form[] {
  return [...body.matchAll(/<form class="action" method="post" action="([^"]+)">(.*?)<\/form>/g)].map((m) => {
    const fields = Object.fromEntries([...m[2]!.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((f) => [f[1]!, f[2]!]));
    return { path: m[1]!, action: m[1]!.split('/').at(-1)!, fields };
  });
}

const flashOf = (body: string) => /<p class="flash (ok|refused)" id="flash" role="status">([^<]*)<\/p>/.exec(body);

async function dashboard(options: Partial<DashboardOptions>): Promise<ServedDashboard> {
  const d = await serve({ handler: createDashboard({ joblog, token: TOKEN, ...options } as DashboardOptions), port: 0 });
  opened.push(d);
  return d;
}
const opened: ServedDashboard[] = [];

beforeAll(async () => {
  const t = await tracked(db);
  joblog = t.joblog;
  const { boss } = t;
  const flaky = queueName('flaky');
  const ok = queueName('ok');
  const live = queueName('live');
  const stale = queueName('stale');
  await boss.createQueue(flaky, { retryLimit: 0 });
  await boss.createQueue(ok);
  await boss.createQueue(live, { retryLimit: 0 });
  await boss.createQueue(stale, { retryLimit: 0 });
  await joblog.work(flaky, { ...FAST, type: 'reconciliation', userId: () => 'carol' }, async () => {
    if (failing) throw new Error('bank API timeout');
  });
  await joblog.work(ok, { ...FAST, type: 'report_export', userId: () => 'bob' }, async () => {});
  for (const [queue, hold] of [[live, holds.live], [stale, holds.stale]] as const) {
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: (j: any) => j.data.userId }, () => hold.promise);
  }
  jids.dead = (await boss.send(flaky, {}))!;
  jids.finished = (await boss.send(ok, {}))!;
  jids.live = (await boss.send(live, { userId: 'u-live' }))!;
  jids.stale = (await boss.send(stale, { userId: 'u-stale' }))!;
  await Promise.all([
    waitForRow(joblog, jids.dead, ['dead', 'failed']),
    waitForRow(joblog, jids.finished, ['finished']),
    waitForRow(joblog, jids.live, ['started']),
    waitForRow(joblog, jids.stale, ['started']),
  ]);
  // pg-boss loses the job while its row still holds the section: a stale section.
  await db.pool.query('DELETE FROM pgboss.job WHERE id = $1', [jids.stale]);
  // A job that waited long for its section.
  await db.pool.query('UPDATE job_logs SET waited_ms = 95000 WHERE jid = $1', [jids.finished]);
  served = await dashboard({ actions: true, actor: (request) => request.headers.get('x-user') });
});

afterAll(async () => {
  holds.live.open();
  holds.stale.open();
  await Promise.all(opened.map((d) => d.close()));
});

describe('read-only unless the app turns actions on', () => {
  test('without actions no page has a button, and a POST is a 405', async () => {
    const readOnly = await dashboard({});
    const visitor = new Visitor(readOnly.url);
    for (const path of [`/jobs/${jids.dead}`, `/jobs/${jids.live}`, '/']) {
      const page = await visitor.get(path);
      expect(page.status).toBe(200);
      expect(formsOf(page.body)).toEqual([]);
    }
    expect(visitor.cookies.has('joblog_session')).toBe(false);
    const post = await visitor.post(`/jobs/${jids.dead}/retry`, { token: 'x', seen: 'y' });
    expect(post.status).toBe(405);
    expect((await joblog.get(jids.dead))!.state).toMatch(/dead|failed/);
  });

  test('each row offers the actions that apply: retry a dead job, cancel or release a running one, nothing for a finished one', async () => {
    const visitor = new Visitor(served.url);
    const actions = async (jid: string) => formsOf((await visitor.get(`/jobs/${jid}`)).body).map((f) => f.action);
    expect(await actions(jids.dead)).toEqual(['retry']);
    expect(await actions(jids.live)).toEqual(['cancel', 'release']);
    expect(await actions(jids.finished)).toEqual([]);
    const cookie = visitor.cookies.get('joblog_session');
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  test('the session cookie is HttpOnly and SameSite=Strict, for the dashboard\'s path', async () => {
    const res = await fetch(new URL(`/jobs/${jids.dead}`, served.url), { headers: bearer });
    const line = res.headers.getSetCookie().find((c) => c.startsWith('joblog_session='))!;
    expect(line).toMatch(/HttpOnly/);
    expect(line).toMatch(/SameSite=Strict/);
    expect(line).toMatch(/Path=\//);
  });

  test.each([['yes'], [1], [{}], [undefined]])('authorize returning %o hides the button and refuses the POST: only true admits', async (verdict) => {
    const d = await dashboard({ authorize: (() => verdict) as never });
    const visitor = new Visitor(d.url);
    expect(formsOf((await visitor.get(`/jobs/${jids.dead}`)).body)).toEqual([]);
    const open = new Visitor(served.url);
    const [form] = formsOf((await open.get(`/jobs/${jids.dead}`)).body);
    visitor.cookies.set('joblog_session', open.cookies.get('joblog_session')!);
    const post = await visitor.post(form!.path, form!.fields);
    expect(post.status).toBe(403);
    expect(post.body).toContain('does not allow retry');
  });

  test('authorize decides per action', async () => {
    const d = await dashboard({ authorize: async (_request, action) => action === 'release' });
    const visitor = new Visitor(d.url);
    expect(formsOf((await visitor.get(`/jobs/${jids.live}`)).body).map((f) => f.action)).toEqual(['release']);
  });
});

describe('a POST of the page\'s form', () => {
  test('a refused action redirects back and shows the reason once', async () => {
    const visitor = new Visitor(served.url);
    const release = formsOf((await visitor.get(`/jobs/${jids.live}`)).body).find((f) => f.action === 'release')!;
    const post = await visitor.post(release.path, release.fields);
    expect(post.status).toBe(303);
    expect(post.location).toBe(`/jobs/${jids.live}`);
    const page = await visitor.get(post.location!);
    expect(flashOf(page.body)?.slice(1)).toEqual(['refused', 'Release section refused: its holder is alive: pg-boss has the job running or waiting for its retry.']);
    expect(flashOf((await visitor.get(post.location!)).body)).toBeNull();
    expect((await joblog.get(jids.live))!.state).toBe('started');
  });

  test('forged POSTs are refused with 403 and change nothing', async () => {
    const visitor = new Visitor(served.url);
    const [form] = formsOf((await visitor.get(`/jobs/${jids.dead}`)).body);
    const other = new Visitor(served.url);
    await other.get(`/jobs/${jids.dead}`);
    const before = await joblog.get(jids.dead);
    const attempts: [string, () => ReturnType<Visitor['post']>][] = [
      ['no token', () => visitor.post(form!.path, { seen: form!.fields.seen!, back: 'job' })],
      ['a wrong token', () => visitor.post(form!.path, { ...form!.fields, token: 'A'.repeat(43) })],
      ['a token of another job', () => visitor.post(`/jobs/${jids.finished}/retry`, form!.fields)],
      ['a token of another action', () => visitor.post(`/jobs/${jids.dead}/cancel`, form!.fields)],
      ['a token of another session', () => other.post(form!.path, form!.fields)],
      ['no session cookie', () => new Visitor(served.url).post(form!.path, form!.fields)],
      ['a foreign Origin', () => visitor.post(form!.path, form!.fields, { origin: 'https://evil.example' })],
      // what a browser sends for the dashboard's own forms (Referrer-Policy: no-referrer): the token decides
      ['Origin null, a wrong token', () => visitor.post(form!.path, { ...form!.fields, token: 'B'.repeat(43) }, { origin: 'null', 'sec-fetch-site': 'same-origin' })],
      ['Sec-Fetch-Site: cross-site', () => visitor.post(form!.path, form!.fields, { 'sec-fetch-site': 'cross-site' })],
      ['Sec-Fetch-Site: same-site', () => visitor.post(form!.path, form!.fields, { 'sec-fetch-site': 'same-site' })],
      // the cookie of a SameSite=Strict dashboard stays home: still a 403 (a forgery), not a 401
      ['cross-site, without credentials', () => new Visitor(served.url, {}).post(form!.path, form!.fields, { origin: 'https://evil.example' })],
    ];
    for (const [what, attempt] of attempts) {
      const res = await attempt();
      expect(res.status, what).toBe(403);
      expect(res.body, what).toMatch(/Refused: |not made for your session/);
    }
    expect(await joblog.get(jids.dead)).toEqual(before);
  });

  test('a body that is not the form, or too large, is refused', async () => {
    const visitor = new Visitor(served.url);
    const [form] = formsOf((await visitor.get(`/jobs/${jids.dead}`)).body);
    expect((await visitor.post(form!.path, form!.fields, { 'content-type': 'application/json' })).status).toBe(415);
    expect((await visitor.post(form!.path, { ...form!.fields, extra: '1' })).status).toBe(400);
    expect((await visitor.post(form!.path, { ...form!.fields, back: 'https://evil.example/' })).status).toBe(400);
    expect((await visitor.post(form!.path, { ...form!.fields, seen: 'x'.repeat(20_000) })).status).toBe(413);
    expect((await visitor.post(`/jobs/not-a-uuid/retry`, form!.fields)).status).toBe(400);
    expect((await visitor.post(`/jobs/${jids.dead}/delete`, form!.fields)).status).toBe(405);
  });

  test('Retry: the job runs again through pg-boss and finishes; who asked is in its history; the same form again does nothing', async () => {
    failing = false;
    const visitor = new Visitor(served.url, { ...bearer, 'x-user': 'ana@example.com' });
    const [form] = formsOf((await visitor.get(`/jobs/${jids.dead}`)).body);
    const post = await visitor.post(form!.path, form!.fields);
    expect(post.status).toBe(303);
    const page = await visitor.get(post.location!);
    expect(flashOf(page.body)?.[2]).toMatch(/^Retried: pg-boss runs the job again; its row is (started|finished)\.$/);
    const row = await waitForRow(joblog, jids.dead, ['finished']);
    expect(row.errors.filter((e) => e.error.code === 'RETRY_REQUESTED').map((e) => e.error.message)).toEqual([
      expect.stringMatching(/^retry requested by ana@example\.com; the job had ended (dead|failed)$/),
    ]);

    // Replayed: the row has moved on since the form was made.
    const replay = await visitor.post(form!.path, form!.fields);
    expect(replay.status).toBe(303);
    const after = await visitor.get(replay.location!);
    expect(flashOf(after.body)?.slice(1)).toEqual(['refused', expect.stringMatching(/^Not done: this form was for the job as it was \((dead|failed), attempt 1\); it is finished, attempt 2 now\./)]);
    expect((await joblog.get(jids.dead))!.errors.filter((e) => e.error.code === 'RETRY_REQUESTED')).toHaveLength(1);
  });

  test('Release of a stale section from the overview: back to the overview, the section free; `by` defaults to dashboard', async () => {
    const visitor = new Visitor(served.url);
    const overview = await visitor.get('/');
    const forms = formsOf(overview.body);
    // the same button in "needs attention" and in the sections table
    expect(forms.map((f) => f.path)).toEqual([`/jobs/${jids.stale}/release`, `/jobs/${jids.stale}/release`]);
    const post = await visitor.post(forms[0]!.path, forms[0]!.fields);
    expect(post.location).toBe('/#sections');
    expect(flashOf((await visitor.get('/')).body)?.slice(1)).toEqual(['ok', 'Released: the section is free; the row is dead.']);
    const row = (await joblog.get(jids.stale))!;
    expect(row.state).toBe('dead');
    expect(row.errors.at(-1)!.error).toMatchObject({ code: 'RELEASE_REQUESTED', message: 'section released by dashboard' });
  });

  test('an actor that returns a non-string is the app\'s bug: a 500 told to onError, nothing done', async () => {
    const errors: unknown[] = [];
    const d = await dashboard({ actions: true, actor: (() => 42) as never, onError: (e) => errors.push(e) });
    const visitor = new Visitor(d.url);
    const cancel = formsOf((await visitor.get(`/jobs/${jids.live}`)).body).find((f) => f.action === 'cancel')!;
    expect((await visitor.post(cancel.path, cancel.fields)).status).toBe(500);
    expect(String(errors[0])).toMatch(/actor\(request\) returned number/);
    expect((await joblog.get(jids.live))!.state).toBe('started');
  });
});

describe('options', () => {
  test.each([
    [{ actions: true, authorize: () => true }, 'authorize'],
    [{ actor: () => 'x' }, 'actor'],
    [{ actionSecret: 'x'.repeat(40) }, 'actionSecret'],
    [{ actions: true, actionSecret: 'short' }, 'actionSecret'],
    [{ actions: 'yes' }, 'actions'],
    [{ longWaitMs: 0 }, 'longWaitMs'],
  ])('createDashboard(%o) throws naming %s', (options, field) => {
    const make = () => createDashboard({ joblog, token: TOKEN, ...options } as never);
    expect(make).toThrow(InvalidOptionsError);
    expect(make).toThrow(field);
  });

  test('actions need a job log that has them', () => {
    const { find, stats, sections, get } = joblog;
    const reader = { find, stats, sections, get };
    expect(() => createDashboard({ joblog: reader, token: TOKEN })).not.toThrow();
    expect(() => createDashboard({ joblog: reader, token: TOKEN, actions: true })).toThrow(/joblog: actions need a job log with retry, cancel, release/);
  });

  test('a shared actionSecret lets a form made by one process act through another', async () => {
    const secret = 's'.repeat(32);
    const [a, b] = [await dashboard({ actions: true, actionSecret: secret }), await dashboard({ actions: true, actionSecret: secret })];
    const visitor = new Visitor(a.url);
    const release = formsOf((await visitor.get(`/jobs/${jids.live}`)).body).find((f) => f.action === 'release')!;
    const other = new Visitor(b.url);
    other.cookies.set('joblog_session', visitor.cookies.get('joblog_session')!);
    const res = await other.post(release.path, release.fields);
    expect(res.status).toBe(303);
    // and one without the secret does not know the form
    const c = new Visitor((await dashboard({ actions: true })).url);
    c.cookies.set('joblog_session', visitor.cookies.get('joblog_session')!);
    expect((await c.post(release.path, release.fields)).status).toBe(403);
  });
});

describe('the overview a person keeps open', () => {
  test('refreshes itself every 30 s without a script, until ?refresh=off; the choice stays in the window links', async () => {
    const visitor = new Visitor(served.url);
    const on = (await visitor.get('/')).body;
    expect(on).toContain('<meta http-equiv="refresh" content="30">');
    expect(on).toContain('<a href="/?refresh=off">stop refreshing</a>');
    const off = (await visitor.get('/?window=1h&refresh=off')).body;
    expect(off).not.toContain('http-equiv="refresh"');
    expect(off).toContain('<a href="/?window=7d&amp;refresh=off"');
    expect(off).toContain('<a href="/?window=1h">refresh every 30 s</a>');
    expect((await visitor.get('/?refresh=10')).body).toContain('<meta http-equiv="refresh" content="10">');
    for (const bad of ['2', 'often', '99999']) {
      const res = await visitor.get(`/?refresh=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body).toContain('<code id="bad-parameter">refresh</code>');
    }
  });

  test('failure rate and p95 duration of each job type, drawn as bars from the window\'s stats', async () => {
    const body = (await new Visitor(served.url).get('/?refresh=off')).body;
    const stats = await joblog.stats({ since: new Date(Date.now() - 86400_000) });
    const bars = (id: string) => {
      const svg = new RegExp(`<svg id="${id}"[\\s\\S]*?</svg>`).exec(body)![0];
      return Object.fromEntries([...svg.matchAll(/<g class="bar" data-type="(\w+)">.*?<text class="axis value"[^>]*>([^<]*)<\/text><\/g>/g)].map((m) => [m[1], m[2]]));
    };
    expect(Object.keys(bars('failure-rates')).sort()).toEqual(stats.byType.map((t) => t.jobType).sort());
    const reconciliation = stats.byType.find((t) => t.jobType === 'reconciliation')!;
    expect(bars('failure-rates').report_export).toBe('0 %');
    expect(bars('failure-rates').reconciliation).toBe(`${Math.round(reconciliation.failureRate! * 100)} %`);
    for (const t of stats.byType) expect(bars('p95-durations')[t.jobType]).toBe(t.p95Ms === null ? '—' : formatDuration(t.p95Ms));
    expect(bars('p95-durations').report_export).toMatch(/^\d+ ms$/);
  });

  test('a type without a settled run has no bar, and the bars scale to the largest', () => {
    const svg = typeBarsChart('x', 'p95', [
      { label: 'a', value: null, text: '', title: 'a' },
      { label: 'b', value: 2000, text: '2.0 s', title: 'b' },
      { label: 'c', value: 1000, text: '1.0 s', title: 'c' },
    ], 'duration').toString();
    const widths = [...svg.matchAll(/<rect class="duration" [^>]*width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(2);
    expect(widths[0]).toBeCloseTo(widths[1]! * 2, 0);
    expect(svg).toMatch(/data-type="a">.*>—<\/text>/);
  });

  test('needs attention: the day\'s dead or failed jobs, stale sections with their Release button, long waits', async () => {
    const fresh = await setupAttention();
    const body = (await new Visitor(served.url).get('/')).body;
    const list = (id: string) => /<ul id="([\w-]+)">([\s\S]*?)<\/ul>/g.exec(body.slice(body.indexOf(`<ul id="${id}">`)))?.[2] ?? '';
    expect(list('attention-dead')).toContain(fresh.dead.slice(0, 8));
    expect(list('attention-dead')).toContain('never again');
    expect(list('attention-stale')).toContain(fresh.stale.slice(0, 8));
    expect(list('attention-stale')).toContain('<button type="submit" class="release" data-action="release">Release section</button>');
    expect(list('attention-waits')).toMatch(new RegExp(`${jids.finished.slice(0, 8)}.*waited <b>1 min 35 s</b>`));
    fresh.done();
  });

  test('a page\'s reads are few: the overview asks the log four times, the job page once', async () => {
    const calls: string[] = [];
    const counted = new Proxy(joblog, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? (...args: unknown[]) => (calls.push(String(key)), value.apply(target, args)) : value;
      },
    });
    const handler = createDashboard({ joblog: counted, token: TOKEN, actions: true });
    expect((await handler(new Request('http://app.test/', { headers: bearer }))).status).toBe(200);
    expect(calls).toEqual(['stats', 'sections', 'find', 'find']);
    calls.length = 0;
    expect((await handler(new Request(`http://app.test/jobs/${jids.live}`, { headers: bearer }))).status).toBe(200);
    expect(calls).toEqual(['get']);
  });
});

describe('hostile but legal', () => {
  test('an actor with a NUL, a lone surrogate and 4 kB is recorded sanitised; the cancel goes through', async () => {
    const hostile = `ops\u0000\uD800${'x'.repeat(4096)}`;
    const d = await dashboard({ actions: true, actor: () => hostile });
    const visitor = new Visitor(d.url);
    const cancel = formsOf((await visitor.get(`/jobs/${jids.live}`)).body).find((f) => f.action === 'cancel')!;
    const post = await visitor.post(cancel.path, cancel.fields);
    expect(post.status).toBe(303);
    expect(flashOf((await visitor.get(post.location!)).body)?.slice(1)).toEqual(['ok', 'Cancelled: pg-boss cancelled the job; its row is dead.']);
    const note = (await joblog.get(jids.live))!.errors.find((e) => e.error.code === 'CANCEL_REQUESTED')!;
    expect(note.error.message).toMatch(/^cancel requested by ops/);
    expect(note.error.message).not.toContain('\u0000');
  });

  test('find({ minWaitedMs }) takes whole milliseconds from 0', async () => {
    await expect(joblog.find({ minWaitedMs: -1 })).rejects.toThrow(/minWaitedMs/);
    await expect(joblog.find({ minWaitedMs: 1.5 })).rejects.toThrow(/minWaitedMs/);
    const rows = (await joblog.find({ minWaitedMs: 95000 })).rows.map((r) => r.jid);
    expect(rows).toEqual([jids.finished]);
    expect((await joblog.find({ minWaitedMs: 95001 })).rows).toEqual([]);
  });
});

/** A fresh dead job and a fresh stale section (the ones above may have been acted on). */
async function setupAttention(): Promise<{ dead: string; stale: string; done(): void }> {
  const { boss } = await tracked(db);
  const log = joblog;
  const [dies, holds] = [queueName('dies'), queueName('holds')];
  const hold = gate();
  await boss.createQueue(dies, { retryLimit: 0 });
  await boss.createQueue(holds, { retryLimit: 0 });
  await log.work(dies, { ...FAST, type: 'reconciliation', userId: () => 'u-dies' }, async () => {
    throw new Error('never again');
  });
  await log.work(holds, { ...FAST, type: 'reconciliation', group: 'financial', userId: () => 'u-gone' }, () => hold.promise);
  const dead = (await boss.send(dies, {}))!;
  const stale = (await boss.send(holds, {}))!;
  await Promise.all([waitForRow(log, dead, ['dead', 'failed']), waitForRow(log, stale, ['started'])]);
  await db.pool.query('DELETE FROM pgboss.job WHERE id = $1', [stale]);
  return { dead, stale, done: () => hold.open() };
}
