// The dashboard over plain HTTP: who gets in, what it refuses, the headers it sends, and the
// 400 page for each kind of bad parameter. Pages are read from a real log (see helpers/dashboard).
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createDashboard, InvalidOptionsError, nodeListener, serve, type ServedDashboard } from '../src/index.ts';
import { html } from '../src/dashboard/html.ts';
import { setupTestDb } from './helpers/db.ts';
import { seedDashboard, TOKEN, type Seeded } from './helpers/dashboard.ts';
import { lockJobLogs, waitingOnLocks, type TableLock } from './helpers/lock.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('dashboard_http');
let seeded: Seeded;
let served: ServedDashboard;
const at = (path: string) => new URL(path, served.url).toString();
const bearer = { authorization: `Bearer ${TOKEN}` };
const get = (path: string, init: RequestInit = {}) =>
  fetch(at(path), { redirect: 'manual', ...init, headers: { ...bearer, ...(init.headers as Record<string, string>) } });

beforeAll(async () => {
  seeded = await seedDashboard(db);
  served = await serve({ handler: createDashboard({ joblog: seeded.joblog, token: TOKEN }), port: 0 });
});
afterAll(async () => {
  await served?.close();
  await seeded?.release();
});

describe('html template', () => {
  test('escapes every interpolated value, keeps nested html, renders lists and skips null/false', () => {
    const name = `<script>alert("x")</script>'&\``;
    const out = html`<p title="${name}">${name}${html`<b>${'<i>'}</b>`}${[1, html`<br>`, 'a&b']}${null}${false}${undefined}</p>`.toString();
    expect(out).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;&#96;">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;&#96;<b>&lt;i&gt;</b>1<br>a&amp;b</p>',
    );
  });
});

describe('access', () => {
  test('serve() listens on 127.0.0.1 unless told otherwise', () => {
    expect(new URL(served.url).hostname).toBe('127.0.0.1');
  });

  test('no token: 401 with a Bearer challenge; a wrong one: 403', async () => {
    const none = await fetch(at('/'));
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await none.text()).toContain('Token required');
    expect((await fetch(at('/jobs'), { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(403);
    const wrongQuery = await fetch(at('/?token=nope'), { redirect: 'manual' });
    expect(wrongQuery.status).toBe(403);
    expect(wrongQuery.headers.get('set-cookie')).toBeNull();
    expect((await fetch(at('/'), { headers: { cookie: 'joblog_dashboard=forged' } })).status).toBe(403);
    expect((await get('/')).status).toBe(200);
  });

  test('?token= sets an HttpOnly SameSite=Strict cookie and redirects to the same page without it', async () => {
    const first = await fetch(at(`/jobs?state=failed&token=${TOKEN}`), { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/jobs?state=failed');
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toContain(TOKEN);
    const next = await fetch(at('/jobs?state=failed'), { headers: { cookie: cookie.split(';')[0]! } });
    expect(next.status).toBe(200);
    expect(await next.text()).toContain(seeded.jids.xss);
  });

  test('a redirect never leaves the dashboard, whatever the path looks like', async () => {
    // fetch() would resolve `//evil.example/` against the host; send the request line as is.
    const { status, location } = await new Promise<{ status?: number; location?: string }>((resolve, reject) => {
      const { port } = new URL(served.url);
      http
        .get({ host: '127.0.0.1', port, path: `//evil.example/?token=${TOKEN}` }, (res) => {
          res.resume();
          resolve({ status: res.statusCode, location: res.headers.location });
        })
        .on('error', reject);
    });
    expect(status).toBe(303);
    expect(location).toBe('/evil.example/');
  });

  test('host auth replaces the token: false is a 403, true lets the request in', async () => {
    const handler = createDashboard({
      joblog: seeded.joblog,
      auth: (request) => request.headers.get('x-admin') === 'yes',
    });
    expect((await handler(new Request('http://app.test/'))).status).toBe(403);
    expect((await handler(new Request('http://app.test/', { headers: { 'x-admin': 'yes' } }))).status).toBe(200);
  });
});

describe('read-only', () => {
  test.each(['POST', 'PUT', 'PATCH', 'DELETE'])('%s is refused with 405, token or not', async (method) => {
    for (const headers of [{}, bearer]) {
      const res = await fetch(at('/jobs'), { method, headers });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    }
  });

  test('HEAD answers like GET, without a body', async () => {
    const res = await get('/jobs', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toBe('');
  });
});

describe('headers', () => {
  test('every page, the refusals too, sends a CSP that allows no script and only its own stylesheet', async () => {
    for (const res of [await get('/'), await get('/jobs'), await get(`/jobs/${seeded.jids.dead}`), await fetch(at('/')), await get('/?window=2h')]) {
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('script-src');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.text();
      expect(body).not.toMatch(/<script/i);
      // The one inline stylesheet is the one the CSP's hash allows.
      const style = /<style>([\s\S]*?)<\/style>/.exec(body)![1]!;
      expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    }
  });
});

describe('bad parameters', () => {
  test.each([
    ['/?window=2h', 'window'],
    ['/?windwo=24h', 'windwo'],
    ['/jobs?state=exploded', 'state'],
    ['/jobs?type=a%20b', 'type'],
    ['/jobs?limit=0', 'limit'],
    ['/jobs?limit=9999', 'limit'],
    ['/jobs?limit=ten', 'limit'],
    ['/jobs?since=yesterday', 'since'],
    ['/jobs?since=2026-11-30T10:00&until=2026-11-30T09:00', 'until'],
    ['/jobs?jid=42', 'jid'],
    ['/jobs?user=a&user=b', 'user'],
    ['/jobs?cursor=not-a-cursor', 'cursor'],
    ['/jobs/not-a-uuid', 'jid'],
    [`/jobs/00000000-0000-4000-8000-000000000000?x=1`, 'x'],
    // the library's own input rules, reached through the page
    ['/jobs?type=nope', 'type'],
    ['/jobs?type=nope&type=nada', 'type'],
    ['/jobs?user=a%00b', 'user'],
    ['/jobs?group=%00', 'group'],
    ['/jobs?user=%20bob%20', 'user'],
    [`/jobs?user=${'x'.repeat(3000)}`, 'user'],
    ['/jobs?since=0000-01-01', 'since'],
    ['/jobs?since=2026-02-30', 'since'],
    ['/jobs?since=2026-01-01%20junk', 'since'],
    [`/jobs?cursor=${Buffer.from('2026-01-01T00:00:00.000Z|99999999999999999999999').toString('base64url')}`, 'cursor'],
    [`/jobs?cursor=${Buffer.from('2026-01-01 junk|5').toString('base64url')}`, 'cursor'],
  ])('%s is a 400 naming %s', async (path, parameter) => {
    const res = await get(path);
    expect(res.status).toBe(400);
    const body = await res.text();
    expect(body).toContain(`<code id="bad-parameter">${parameter}</code>`);
  });

  test('unknown job or page: 404', async () => {
    expect((await get('/jobs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await get('/nothing-here')).status).toBe(404);
  });
});

describe('pages', () => {
  test('the job list filters through find() and pages with its cursor, newest first, no row twice', async () => {
    const seen: string[] = [];
    let path: string | null = '/jobs?user=user-1&limit=15';
    let pages = 0;
    while (path) {
      const body = await (await get(path)).text();
      const rows = [...body.matchAll(/<tr data-jid="([0-9a-f-]{36})">/g)].map((m) => m[1]!);
      seen.push(...rows);
      const next = /<a href="([^"]+)" rel="next"/.exec(body);
      path = next ? next[1]!.replaceAll('&amp;', '&') : null;
      pages++;
    }
    const { rows } = await db.pool.query(`SELECT jid::text FROM job_logs WHERE user_id = 'user-1' ORDER BY started_at DESC, id DESC`);
    expect(seen).toEqual(rows.map((r) => r.jid));
    expect(rows.length).toBeGreaterThan(15);
    expect(pages).toBe(Math.ceil(rows.length / 15));
  });

  test('the overview counts by state what the table holds for the window', async () => {
    const body = await (await get('/?window=7d')).text();
    const { rows } = await db.pool.query(
      `SELECT state::text, count(*)::int AS n FROM job_logs WHERE started_at >= now() - interval '7 days' GROUP BY state`,
    );
    for (const { state, n } of rows) expect(body).toContain(`<b data-count="${state}">${n.toLocaleString('en-US')}</b>`);
  });

  test('without pg-boss\'s tables the overview still shows, saying why the sections are missing', async () => {
    const handler = createDashboard({ joblog: seeded.joblog, token: TOKEN, bossSchema: 'not_pgboss' });
    const res = await handler(new Request('http://app.test/', { headers: bearer }));
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toMatch(/id="sections-unavailable">Not shown: sections: table not_pgboss\.job not found/);
    expect(body).toContain('svg class="chart"');
  });

  test('mounted under a path in a node:http app: links stay under it, other paths are the app\'s', async () => {
    const dashboard = nodeListener(createDashboard({ joblog: seeded.joblog, token: TOKEN, basePath: '/admin/jobs/' }));
    const app = http.createServer((req, res) => {
      if (req.url?.startsWith('/admin/jobs')) return dashboard(req, res);
      res.end('the app');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    try {
      const login = await fetch(`${origin}/admin/jobs?token=${TOKEN}`, { redirect: 'manual' });
      expect(login.headers.get('location')).toBe('/admin/jobs');
      expect(login.headers.get('set-cookie')).toMatch(/Path=\/admin\/jobs;/);
      const body = await (await fetch(`${origin}/admin/jobs/`, { headers: bearer })).text();
      const links = [...body.matchAll(/(?:<a [^>]*?href|action)="([^"]+)"/g)].map((m) => m[1]!);
      expect(links.length).toBeGreaterThan(10);
      for (const link of links) expect(link).toMatch(/^\/admin\/jobs\//);
      expect(await (await fetch(`${origin}/elsewhere`)).text()).toBe('the app');
    } finally {
      await new Promise((resolve) => app.close(resolve));
    }
  });
});

describe('options', () => {
  test.each([
    [{}, 'joblog'],
    [{ joblog: 'x', token: TOKEN }, 'joblog'],
    [{ token: TOKEN }, 'joblog'],
    [{ joblog: true }, 'token'],
    [{ joblog: true, token: 'short' }, 'token'],
    [{ joblog: true, token: TOKEN, auth: () => true }, 'auth'],
    [{ joblog: true, token: TOKEN, basePath: 'admin' }, 'basePath'],
    [{ joblog: true, token: TOKEN, colour: 'blue' }, 'colour'],
    [{ joblog: true, token: TOKEN, statementTimeoutMs: 0 }, 'statementTimeoutMs'],
    [{ joblog: true, token: TOKEN, maxConcurrentQueries: 0 }, 'maxConcurrentQueries'],
    [{ joblog: true, token: TOKEN, showStacks: 'no' }, 'showStacks'],
  ])('createDashboard(%o) throws naming %s', (options, field) => {
    const withLog = (options as { joblog?: unknown }).joblog === true ? { ...options, joblog: seeded.joblog } : options;
    expect(() => createDashboard(withLog as never)).toThrow(InvalidOptionsError);
    expect(() => createDashboard(withLog as never)).toThrow(field);
  });

  test('serve() checks its options', async () => {
    await expect(serve({ handler: async () => new Response(), port: 70000 })).rejects.toThrow(/port/);
    await expect(serve({ port: 0 } as never)).rejects.toThrow(/handler/);
  });
});

describe('access, whatever else the request carries', () => {
  test("a valid cookie still admits beside a proxy's Basic Authorization header; a wrong Bearer with it does too", async () => {
    const login = await fetch(at(`/?token=${TOKEN}`), { redirect: 'manual' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const basic = `Basic ${Buffer.from('proxy-user:proxy-pass').toString('base64')}`;
    expect((await fetch(at('/jobs'), { headers: { cookie, authorization: basic } })).status).toBe(200);
    expect((await fetch(at('/jobs'), { headers: { cookie, authorization: 'Bearer not-this-dashboards' } })).status).toBe(200);
    // Basic alone is no credential of the dashboard's: 401, not 403
    expect((await fetch(at('/jobs'), { headers: { authorization: basic } })).status).toBe(401);
    expect((await fetch(at('/jobs'), { headers: { cookie: 'joblog_dashboard=forged', authorization: basic } })).status).toBe(403);
  });

  test.each([['no'], [1], [{}], ['true'], [undefined]])('host auth returning %o is a 403: only true admits', async (verdict) => {
    const handler = createDashboard({ joblog: seeded.joblog, auth: (() => verdict) as never });
    expect((await handler(new Request('http://app.test/'))).status).toBe(403);
    const async = createDashboard({ joblog: seeded.joblog, auth: (async () => verdict) as never });
    expect((await async(new Request('http://app.test/jobs'))).status).toBe(403);
  });
});

describe('job page stacks', () => {
  test('shown by default; showStacks: false leaves name, code and message only', async () => {
    const page = async (options: { showStacks?: boolean }) => {
      const handler = createDashboard({ joblog: seeded.joblog, token: TOKEN, ...options });
      return (await handler(new Request(`http://app.test/jobs/${seeded.jids.dead}`, { headers: bearer }))).text();
    };
    const shown = await page({});
    expect(shown).toContain('<summary>stack</summary>');
    expect(shown).toMatch(/at .*\.ts:\d+/);
    const hidden = await page({ showStacks: false });
    expect(hidden).toContain('bank API timeout (attempt 1)');
    expect(hidden).not.toContain('<summary>stack</summary>');
    expect(hidden).not.toMatch(/\.ts:\d+/);
  });
});

describe('reads that cannot hurt the app', () => {
  let lock: TableLock | undefined;
  afterEach(() => lock?.release());
  const waitingOnTheLock = () => waitingOnLocks(db.pool);
  /** A dashboard with these options, served while job_logs is locked. */
  async function whileLocked(options: Partial<Parameters<typeof createDashboard>[0]>, run: (url: string) => Promise<void>) {
    const dashboard = await serve({ handler: createDashboard({ joblog: seeded.joblog, token: TOKEN, ...options }), port: 0 });
    try {
      lock = await lockJobLogs(db.pool);
      await run(dashboard.url);
    } finally {
      await dashboard.close();
    }
  }
  const page = (base: string, path: string, signal?: AbortSignal) => fetch(new URL(path, base), { headers: bearer, signal });

  test('a page whose query outlives statementTimeoutMs is a 503, and the app\'s client goes on', async () => {
    await whileLocked({ statementTimeoutMs: 100 }, async (base) => {
      for (const path of ['/', '/jobs', `/jobs/${seeded.jids.dead}`]) {
        const res = await page(base, path);
        expect(res.status, path).toBe(503);
        expect(await res.text()).toContain('ran longer than 100 ms');
      }
      expect(await waitingOnTheLock()).toBe(0);
      expect(await db.prisma.$queryRawUnsafe('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    });
  });

  test('requests beyond maxConcurrentQueries wait queueWaitMs, then get a 503 with Retry-After', async () => {
    await whileLocked({ maxConcurrentQueries: 1, queueWaitMs: 50, statementTimeoutMs: 3000 }, async (base) => {
      const first = page(base, '/jobs');
      await waitFor('the first request to wait on the lock', async () => (await waitingOnTheLock()) === 1);
      const second = await page(base, '/jobs');
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('3');
      expect(await second.text()).toContain('Busy');
      await lock!.release();
      expect((await first).status).toBe(200);
      expect((await page(base, '/jobs')).status).toBe(200);
    });
  });

  test('a request that goes away has its statement cancelled, and queued ones never start', async () => {
    await whileLocked({ maxConcurrentQueries: 1, queueWaitMs: 30_000, statementTimeoutMs: 30_000 }, async (base) => {
      const gone = [0, 1, 2].map(() => page(base, '/', AbortSignal.timeout(300)).catch((e: Error) => e.name));
      await waitFor('the running request to wait on the lock', async () => (await waitingOnTheLock()) === 1);
      expect(await Promise.all(gone)).toEqual(['TimeoutError', 'TimeoutError', 'TimeoutError']);
      await waitFor('no statement left waiting', async () => (await waitingOnTheLock()) === 0, 3000);
      // the turn came back: with the lock still held, a new page waits its own statement out
      const [again] = await Promise.all([
        page(base, '/jobs'),
        waitFor('the next request to run', async () => (await waitingOnTheLock()) === 1, 3000).then(() => lock!.release()),
      ]);
      expect(again.status).toBe(200);
    });
  });
});
