// The commands that change the log (prune, reap) or serve it (dashboard).
import { randomBytes } from 'node:crypto';
import type { JobState } from '../../types.ts';
import { durationOrDate, list, positiveInt, str, UsageError } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { formatDate } from '../format.ts';
import { ProgressBar } from '../progress.ts';
import type { Command } from './read.ts';

export const pruneCommand: Command = {
  summary: 'delete settled history older than a cut-off, in short batches (never started rows)',
  usage: `joblog prune --older-than 30d [--states finished,skipped,failed,dead] [--batch-size 5000] [--dry-run]
  --older-than WHEN    rows settled before: a duration ago (30d, 12h) or an ISO date (required)
  --states S[,S…]      which settled states (default all four; started rows are never pruned)
  --batch-size N       rows per short transaction (default 5000)
  --dry-run            count what would be deleted, delete nothing
  --progress           draw the progress bar even when stderr is not a terminal
  Ctrl-C stops between batches and reports what was deleted.`,
  options: {
    'older-than': { type: 'string' },
    states: { type: 'string', multiple: true },
    'batch-size': { type: 'string' },
    'dry-run': { type: 'boolean' },
    progress: { type: 'boolean' },
  },
  async run(ctx, { values }) {
    const olderThanText = str(values['older-than']);
    if (!olderThanText) throw new UsageError('prune: --older-than is required, e.g. --older-than 30d');
    const olderThan = durationOrDate('older-than', olderThanText);
    const options = {
      olderThan,
      states: list(values.states) as Exclude<JobState, 'started'>[] | undefined,
      batchSize: positiveInt('batch-size', str(values['batch-size'])),
    };
    const joblog = await ctx.joblog();
    const counted = await joblog.prune({ ...options, dryRun: true });
    if (values['dry-run'] === true) {
      ctx.print(counted, () => `would delete ${counted.deleted} rows settled before ${formatDate(counted.olderThan, ctx.style)}`);
      return 0;
    }
    const showBar = ctx.io.stderr.isTTY === true || values.progress === true;
    const bar = showBar && counted.deleted > 0 ? new ProgressBar(ctx.io.stderr, counted.deleted, 'pruned') : null;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const started = performance.now();
    try {
      const result = await joblog.prune({
        ...options,
        olderThan: counted.olderThan,
        signal: stop.signal,
        onProgress: (p) => bar?.update(p.deleted),
      });
      bar?.done();
      const seconds = (performance.now() - started) / 1000;
      const report = { ...result, seconds: Number(seconds.toFixed(3)), interrupted: stop.signal.aborted };
      ctx.print(report, () =>
        `deleted ${result.deleted} rows settled before ${formatDate(result.olderThan, ctx.style)} ` +
        `in ${result.batches} batches, ${seconds.toFixed(1)} s${report.interrupted ? ' (interrupted)' : ''}`);
      return report.interrupted ? 130 : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

export const reapCommand: Command = {
  summary: 'settle started rows whose holder is gone (pg-boss job settled or missing, lease expired), once',
  usage: `joblog reap [--boss-schema pgboss]
  --boss-schema S      pg-boss's schema (default pgboss)
  brings every started row in line with pg-boss's job table once: completed → finished;
  failed, cancelled or missing → dead; a joblog.section() row whose lease ran out → dead`,
  options: { 'boss-schema': { type: 'string' } },
  async run(ctx) {
    const result = await (await ctx.joblog()).reap();
    ctx.print(result, () =>
      `reaped: ${result.finished} finished (pg-boss had completed them), ${result.dead} dead; ` +
      `${result.kept} kept waiting for their retry`);
    return 0;
  },
};

const TOKEN_ENV = 'JOBLOG_DASHBOARD_TOKEN';

export const dashboardCommand: Command = {
  summary: 'serve the web dashboard (read-only unless --actions) until Ctrl-C',
  usage: `joblog dashboard [--host 127.0.0.1] [--port 4000] [--token T] [--actions] [--metrics]
  --host H             interface to listen on (default 127.0.0.1: this machine only)
  --port N             port (default 4000; 0 picks a free one)
  --token T            the token visitors must show (default $${TOKEN_ENV}; generated and printed if neither)
  --boss-schema S      pg-boss's schema, for the sections' states (default pgboss)
  --actions            Retry, Cancel and Release buttons for everyone with the token (recorded as cli:$USER)
  --metrics            Prometheus metrics at /metrics, behind the same token (needs prom-client)`,
  options: {
    host: { type: 'string' }, port: { type: 'string' }, token: { type: 'string' }, 'boss-schema': { type: 'string' },
    actions: { type: 'boolean' }, metrics: { type: 'boolean' },
  },
  async run(ctx, { values }) {
    const port = parsePort(str(values.port));
    const host = str(values.host) ?? '127.0.0.1';
    const given = str(values.token) ?? ctx.io.env[TOKEN_ENV];
    if (given !== undefined && given.length < 16) {
      throw new UsageError(`--token: use at least 16 characters (or leave it out to get a generated one)`);
    }
    const token = given ?? randomBytes(24).toString('base64url');
    const { createDashboard, serve } = await import('../../dashboard/index.ts');
    const bossSchema = str(values['boss-schema']);
    const acting = values.actions === true;
    const actor = `cli:${ctx.io.env.USER ?? 'dashboard'}`;
    const handler = createDashboard({
      joblog: acting ? await ctx.joblogWithBoss() : await ctx.joblog(),
      token,
      ...(bossSchema === undefined ? {} : { bossSchema }),
      ...(acting ? { actions: true, actor: () => actor } : {}),
      metrics: values.metrics === true,
    });
    const served = await serve({ handler, host, port });
    const link = new URL(served.url);
    if (given === undefined) link.searchParams.set('token', token);
    ctx.note(`joblog dashboard on ${served.url}${given === undefined ? `\nopen ${link} (token generated for this run)` : ''}\nCtrl-C to stop`);
    if (ctx.json) ctx.io.stdout.write(`${JSON.stringify({ url: served.url })}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await served.close();
    return 0;
  },
};

function parsePort(v: string | undefined): number {
  if (v === undefined) return 4000;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`--port: expected 0 to 65535, got '${v}'`);
  return n;
}

