// The read-only commands: list, show, stats, sections.
import { DEFAULT_STATEMENT_TIMEOUT_MS } from '../../reads.ts';
import { isActionEntry } from '../../rows.ts';
import type { FindQuery, HeldSection, JobLogListRow, JobLogRow, JobState, JobTypeStats, ReadOptions, StatsBucketRow } from '../../types.ts';
import { list, parseFlags, pastPoint, positiveInt, str, UsageError, type Options } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { formatDate, formatDuration, formatRate, table, visible, type Column } from '../format.ts';

export interface Command {
  summary: string;
  usage: string;
  options: Options;
  positionals?: number;
  run(ctx: CommandContext, values: ReturnType<typeof parseFlags>): Promise<number>;
}

/** Every read command's bound on each statement it sends. */
const TIMEOUT: Options = { 'statement-timeout': { type: 'string' } };

const TIMEOUT_HELP = `  --statement-timeout MS  the server cancels a statement running longer (default ${DEFAULT_STATEMENT_TIMEOUT_MS})`;

function readOptions(values: ReturnType<typeof parseFlags>['values']): ReadOptions {
  return { statementTimeoutMs: positiveInt('statement-timeout', str(values['statement-timeout'])) ?? DEFAULT_STATEMENT_TIMEOUT_MS };
}

const FILTERS: Options = {
  user: { type: 'string' },
  type: { type: 'string', multiple: true },
  state: { type: 'string', multiple: true },
  group: { type: 'string' },
  queue: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  jid: { type: 'string' },
};

const FILTERS_HELP = `  --user ID            jobs of this user
  --type T[,T…]        job types (repeatable)
  --state S[,S…]       started, finished, failed, dead, skipped (repeatable)
  --group G            section group
  --queue Q            pg-boss queue
  --since WHEN         started at or after: a duration ago (24h, 7d, 90m) or an ISO date
  --until WHEN         started before: the same forms
  --jid UUID           one job`;

function findQuery(values: ReturnType<typeof parseFlags>['values']): FindQuery {
  return {
    userId: str(values.user),
    types: list(values.type),
    states: list(values.state) as JobState[] | undefined,
    group: str(values.group),
    queue: str(values.queue),
    since: pastPoint('since', str(values.since)),
    until: pastPoint('until', str(values.until)),
    jid: str(values.jid),
    limit: positiveInt('limit', str(values.limit)),
    cursor: str(values.cursor),
  };
}

function rowColumns(ctx: CommandContext): Column<JobLogListRow>[] {
  return [
    { header: 'STARTED', value: (r) => formatDate(r.startedAt, ctx.style) },
    { header: 'JID', value: (r) => r.jid },
    { header: 'TYPE', value: (r) => r.jobType },
    { header: 'STATE', value: (r) => r.state },
    { header: 'USER', value: (r) => r.userId ?? '-', shrink: true },
    { header: 'GROUP', value: (r) => r.group ?? '-' },
    { header: 'TRY', value: (r) => `${r.attempt}/${r.maxAttempts}`, right: true },
    { header: 'DURATION', value: (r) => formatDuration(r.durationMs), right: true },
    { header: 'ERROR', value: (r) => (r.error ? `${r.error.message}${r.error.truncated ? '…' : ''}` : ''), shrink: true },
  ];
}

export const listCommand: Command = {
  summary: 'jobs, newest first, filtered, one page at a time',
  usage: `joblog list [filters] [--limit N] [--cursor C]
${FILTERS_HELP}
  --limit N            rows per page (default 50, at most 500)
  --cursor C           the next page: the nextCursor of the previous page (same filters)
${TIMEOUT_HELP}`,
  options: { ...FILTERS, ...TIMEOUT, limit: { type: 'string' }, cursor: { type: 'string' } },
  async run(ctx, { values }) {
    const query = findQuery(values);
    const page = await (await ctx.joblog()).find(query, readOptions(values));
    ctx.print(page, () => (page.rows.length ? table(page.rows, rowColumns(ctx), ctx.style) : 'no jobs match'));
    if (!ctx.json && page.nextCursor) ctx.note(`more: add --cursor ${page.nextCursor}`);
    return 0;
  },
};

export const showCommand: Command = {
  summary: "one job's row and each attempt's error",
  usage: `joblog show <jid>
  exits 3 when there is no row for the jid
${TIMEOUT_HELP}`,
  options: { ...TIMEOUT },
  positionals: 1,
  async run(ctx, { positionals, values }) {
    const jid = positionals[0];
    if (!jid) throw new UsageError('show: give the job id, e.g. joblog show 0b6f…-…');
    const row = await (await ctx.joblog()).get(jid, readOptions(values));
    if (!row) {
      ctx.note(`show: no job ${jid} in the log`);
      return 3;
    }
    ctx.print(row, () => describeRow(row, ctx));
    return 0;
  },
};

function describeRow(r: JobLogRow, ctx: CommandContext): string {
  const fields: [string, string][] = [
    ['jid', r.jid],
    ['type', r.jobType],
    ['queue', r.queue],
    ['state', r.state],
    ['user', r.userId ?? '-'],
    ['group', r.group ?? '-'],
    ['attempt', `${r.attempt} of ${r.maxAttempts}`],
    ['queued', formatDate(r.queuedAt, ctx.style)],
    ['started', formatDate(r.startedAt, ctx.style)],
    ['finished', formatDate(r.finishedAt, ctx.style)],
    ['duration', formatDuration(r.durationMs)],
  ];
  if (r.holderJid) fields.push(['held by', r.holderJid]);
  const lines = fields.map(([k, v]) => `${k.padEnd(9)} ${visible(v)}`);
  // A row settled without running (skipped, bad payload) may carry its error only in `error`.
  const errors = r.errors.length || !r.error ? r.errors : [{ attempt: r.attempt, at: (r.finishedAt ?? r.startedAt).toISOString(), error: r.error }];
  for (const e of errors) {
    if (isActionEntry(e)) {
      lines.push('', `action at ${formatDate(new Date(e.at), ctx.style)}: ${visible(e.error.message)}`);
      continue;
    }
    lines.push('', `attempt ${e.attempt} failed at ${formatDate(new Date(e.at), ctx.style)}: ${visible(`${e.error.name}: ${e.error.message}`)}`);
    const stack = framesOnly(e.error.stack)?.map((l) => `  ${visible(l.trim())}`);
    if (stack?.length) lines.push(...stack);
  }
  return lines.join('\n');
}

/** A stack's frames; rows written before the header line (name: message) was dropped still have it. */
function framesOnly(stack: string | undefined): string[] | undefined {
  const lines = stack?.split('\n');
  if (lines && lines[0] !== undefined && !/^\s*at /.test(lines[0])) lines.shift();
  return lines;
}

export const statsCommand: Command = {
  summary: 'per job type: counts by state, failure rate, duration p50/p95/max',
  usage: `joblog stats [--since 24h] [--until WHEN] [--bucket '1 hour'] [--type T[,T…]]
  --since WHEN         window start: a duration ago or an ISO date (default 24h)
  --until WHEN         window end (default now)
  --bucket WIDTH       also count per bucket: '15 minutes', '1 hour', '1 day', '1 week'
  --type T[,T…]        only these job types
${TIMEOUT_HELP}`,
  options: { ...TIMEOUT, since: { type: 'string' }, until: { type: 'string' }, bucket: { type: 'string' }, type: { type: 'string', multiple: true } },
  async run(ctx, { values }) {
    const result = await (await ctx.joblog()).stats({
      since: pastPoint('since', str(values.since) ?? '24h')!,
      until: pastPoint('until', str(values.until)),
      bucket: str(values.bucket),
      types: list(values.type),
    }, readOptions(values));
    ctx.print(result, () => {
      const head = `jobs started ${formatDate(result.since, ctx.style)} – ${formatDate(result.until, ctx.style)}`;
      const body = result.byType.length ? table(result.byType, statsColumns, ctx.style) : 'no jobs in this window';
      const buckets = result.buckets ? `\n\n${bucketChart(result.buckets, ctx)}` : '';
      return `${head}\n\n${body}${buckets}`;
    });
    return 0;
  },
};

const count = (state: JobState): Column<JobTypeStats> => ({
  header: state.toUpperCase(), value: (s) => String(s.counts[state]), right: true,
});

const statsColumns: Column<JobTypeStats>[] = [
  { header: 'TYPE', value: (s) => s.jobType },
  { header: 'TOTAL', value: (s) => String(s.total), right: true },
  count('started'), count('finished'), count('failed'), count('dead'), count('skipped'),
  { header: 'FAIL%', value: (s) => formatRate(s.failureRate), right: true },
  { header: 'P50', value: (s) => formatDuration(s.p50Ms), right: true },
  { header: 'P95', value: (s) => formatDuration(s.p95Ms), right: true },
  { header: 'MAX', value: (s) => formatDuration(s.maxMs), right: true },
];

const BAR_WIDTH = 40;

function bucketChart(buckets: StatsBucketRow[], ctx: CommandContext): string {
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const bar = (b: StatsBucketRow) => {
    const failed = Math.round((b.failed / max) * BAR_WIDTH);
    const ok = Math.round((b.total / max) * BAR_WIDTH) - failed;
    return `${'✗'.repeat(failed)}${'█'.repeat(Math.max(0, ok))}`;
  };
  return table(buckets, [
    { header: 'BUCKET', value: (b) => formatDate(b.at, ctx.style) },
    { header: 'JOBS', value: (b) => String(b.total), right: true },
    { header: 'FAILED', value: (b) => String(b.failed), right: true },
    { header: '', value: bar },
  ], { ...ctx.style, columns: undefined });
}

export const sectionsCommand: Command = {
  summary: 'sections held now: holder, for how long, its pg-boss state, stale or not',
  usage: `joblog sections [--user ID] [--group G] [--boss-schema pgboss]
  --boss-schema S      pg-boss's schema (default pgboss)
${TIMEOUT_HELP}`,
  options: { ...TIMEOUT, user: { type: 'string' }, group: { type: 'string' }, 'boss-schema': { type: 'string' } },
  async run(ctx, { values }) {
    const held = await (await ctx.joblog()).sections({ userId: str(values.user), group: str(values.group) }, readOptions(values));
    ctx.print(held, () => (held.length ? table(held, sectionColumns(ctx), ctx.style) : 'no section is held'));
    return 0;
  },
};

function sectionColumns(ctx: CommandContext): Column<HeldSection>[] {
  return [
    { header: 'USER', value: (s) => s.userId, shrink: true },
    { header: 'GROUP', value: (s) => s.group },
    { header: 'HOLDER', value: (s) => s.jid },
    { header: 'TYPE', value: (s) => s.jobType },
    { header: 'QUEUE', value: (s) => s.queue, shrink: true },
    { header: 'TRY', value: (s) => `${s.attempt}/${s.maxAttempts}`, right: true },
    { header: 'SINCE', value: (s) => formatDate(s.startedAt, ctx.style) },
    { header: 'HELD', value: (s) => formatDuration(s.heldForMs), right: true },
    { header: 'PG-BOSS', value: (s) => s.bossState ?? '-' },
    { header: 'STALE', value: (s) => (s.stale ? 'STALE' : '') },
  ];
}
