// The demo's jobs and the table it prints (scripts/demo.ts runs it, test/demo.test.ts checks it).
//
// The collisions on alice's `financial` section are arranged, not left to timing: an import holds
// the section until the demo lets it go, and each busy job is sent, and seen busy, while it does.
//
//   holder   an import (onBusy wait) that takes the section and keeps it until released
//   skip     a reconciliation sent meanwhile: skipped, naming the holder
//   throw    a bank sync sent meanwhile: its attempt 1 is busy and pg-boss retries it
//   wait     a second import sent meanwhile: put back, and run once the holder is done
//
// The bank sync's retry is a minute off (its queue's retryDelay); once the holder and the waiting
// import are done, the demo starts it at once (pg-boss `update`), so it never meets them again.
// The other jobs use no section: a report that succeeds on its retry, one that dies on its last
// retry, a non-retryable email that throws, and an import with a bad payload.
import type { PgBoss } from 'pg-boss';
import { z } from 'zod';
import { JobType, type PrismaClient } from '../../src/generated/prisma/client.ts';
import { createJobLog, type JobLog, type JobLogRow, type JobLogWarning } from '../../src/index.ts';

export const QUEUES = {
  import: 'financial-data-import',
  sync: 'bank-sync',
  reconcile: 'reconciliation',
  report: 'report-export',
  email: 'welcome-email',
} as const;

/** One job of the demo: what it shows, and its row once settled. */
export interface DemoCase {
  label: string;
  jid: string;
  row: JobLogRow;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SETTLE_TIMEOUT_MS = 60_000;

/** Polls `check` every 100 ms until it returns something; fails naming `what` after the timeout. */
async function until<T>(what: string, check: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await sleep(100);
  }
  throw new Error(`demo: timed out after ${SETTLE_TIMEOUT_MS / 1000} s waiting for ${what}`);
}

interface Gate {
  entered: Promise<void>;
  release(): void;
  /** Called by the handler: signals that it runs, then waits for release(). */
  hold(): Promise<void>;
}

function gate(): Gate {
  let entered!: () => void;
  let release!: () => void;
  const enteredP = new Promise<void>((resolve) => (entered = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return { entered: enteredP, release, hold: () => (entered(), released) };
}

/** Run every case of the demo on `boss` (started) and return each case with its settled row. */
export async function runScenario(prisma: PrismaClient, boss: PgBoss, warn: (w: JobLogWarning) => void): Promise<DemoCase[]> {
  await boss.createQueue(QUEUES.import, { retryLimit: 3, retryDelay: 1 });
  await boss.createQueue(QUEUES.sync, { retryLimit: 3, retryDelay: 60 });
  await boss.createQueue(QUEUES.reconcile, { retryLimit: 2, retryDelay: 1 });
  await boss.createQueue(QUEUES.report, { retryLimit: 2, retryDelay: 1 });
  await boss.createQueue(QUEUES.email, { retryLimit: 0 });

  const joblog = createJobLog({ prisma, boss });
  joblog.on('warning', warn);
  try {
    return await playCases(boss, joblog);
  } finally {
    joblog.stop(); // its reaper; the workers stop with boss.stop()
  }
}

async function playCases(boss: PgBoss, joblog: JobLog): Promise<DemoCase[]> {
  const holds = new Map<string, Gate>();
  await startWorkers(joblog, holds);

  const sent: { label: string; jid: string }[] = [];
  const send = async (label: string, queue: string, data: object) => {
    const jid = await boss.send(queue, data);
    if (!jid) throw new Error(`demo: pg-boss did not take the ${label} job`);
    sent.push({ label, jid });
    return jid;
  };

  // The jobs that take no section run alongside.
  await send('retry', QUEUES.report, { userId: 'bob', failUntilAttempt: 1 });
  await send('dead', QUEUES.report, { userId: 'carol', failUntilAttempt: 99 });
  await send('non-retryable', QUEUES.email, { userId: 'erin' });
  await send('bad payload', QUEUES.import, { userId: 'dave' });

  const holder = gate();
  holds.set('alice-2026-11.csv', holder);
  const holderJid = await send('holder', QUEUES.import, { userId: 'alice', fileId: 'alice-2026-11.csv' });
  await holder.entered;

  const skipJid = await send('onBusy: skip', QUEUES.reconcile, { userId: 'alice', fileId: 'alice-2026-11.csv' });
  await until('the reconciliation to be skipped', async () => (await joblog.get(skipJid))?.state === 'skipped');
  const throwJid = await send('onBusy: throw', QUEUES.sync, { userId: 'alice', fileId: 'alice-bank-2026-11' });
  await until('the bank sync to be busy', async () => (await boss.getJobById(QUEUES.sync, throwJid))?.state === 'retry');
  const waitJid = await send('onBusy: wait', QUEUES.import, { userId: 'alice', fileId: 'alice-2026-12.csv' });
  await until('the second import to be put back', async () => {
    const job = await boss.getJobById(QUEUES.import, waitJid);
    return job?.state === 'retry' && (job.output as { joblogWait?: unknown } | null)?.joblogWait;
  });

  holder.release();
  await until('the holder to finish', async () => (await joblog.get(holderJid))?.state === 'finished');
  await until('the waiting import to run', async () => (await joblog.get(waitJid))?.state === 'finished');
  await boss.update(QUEUES.sync, undefined, { id: throwJid, startAfter: new Date() });

  const cases: DemoCase[] = [];
  const order = ['holder', 'onBusy: skip', 'onBusy: throw', 'onBusy: wait', 'retry', 'dead', 'non-retryable', 'bad payload'];
  for (const label of order) {
    const { jid } = sent.find((s) => s.label === label)!;
    const row = await until(`the ${label} job to settle`, async () => {
      const r = await joblog.get(jid);
      return r && r.state !== 'started' ? r : null;
    });
    cases.push({ label, jid, row });
  }
  return cases;
}

async function startWorkers(joblog: JobLog, holds: Map<string, Gate>): Promise<void> {
  const fast = { pollingIntervalSeconds: 0.5, localConcurrency: 4 };
  const financial = {
    type: JobType.financial_data_import, group: 'financial', userId: (job: { data: { userId: string } }) => job.data.userId,
    schema: z.object({ userId: z.string(), fileId: z.string() }),
  };
  const importFile = async (job: { data: { fileId: string } }) => {
    await holds.get(job.data.fileId)?.hold();
    await sleep(200);
  };
  // An uploaded file waits its turn; the nightly bank sync backs off; a reconciliation while the
  // data is changing is pointless, so it is skipped.
  await joblog.work(QUEUES.import, { ...fast, ...financial, onBusy: { wait: { retryEverySeconds: 1, giveUpAfterSeconds: 30 } } }, importFile);
  await joblog.work(QUEUES.sync, { ...fast, ...financial, onBusy: 'throw' }, importFile);
  await joblog.work(QUEUES.reconcile, { ...fast, ...financial, type: JobType.reconciliation, onBusy: 'skip' }, async () => sleep(100));
  await joblog.work<{ userId: string; failUntilAttempt: number }>(QUEUES.report, {
    ...fast, type: JobType.report_export, userId: (job) => job.data.userId,
  }, async (job, ctx) => {
    if (ctx.attempt <= job.data.failUntilAttempt) throw new Error('export service unavailable');
  });
  await joblog.work(QUEUES.email, { ...fast, type: JobType.welcome_email, userId: (job) => job.data.userId }, async () => {
    throw new Error('mail server rejected the message');
  });
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const short = (jid: string) => jid.slice(0, 8);
const NOTE_WIDTH = 60;

/** What the row says about its earlier attempts (its `errors`), or the holder it met. */
export function noteOf(row: JobLogRow): string {
  const parts: string[] = [];
  if (row.waitedMs !== null && row.state !== 'skipped') parts.push('ran after waiting for its section');
  const runs = new Map<string, number[]>();
  for (const { attempt, error, holderJid } of row.errors) {
    const holder = holderJid ?? holderIn(error.message); // a last busy attempt's entry names it in the message
    const what = error.code === 'SECTION_BUSY' ? `busy, held by ${holder ? short(holder) : 'a job that has ended'}` : error.message;
    runs.set(what, [...(runs.get(what) ?? []), attempt]);
  }
  for (const [what, attempts] of runs) {
    const which = attempts.length === 1 ? `attempt ${attempts[0]}` : `attempts ${attempts[0]}-${attempts.at(-1)}`;
    parts.push(`${which}: ${what.replace(UUID, (id) => short(id))}`);
  }
  const note = parts.join('; ');
  return note.length > NOTE_WIDTH ? `${note.slice(0, NOTE_WIDTH - 1)}…` : note;
}

function holderIn(message: string): string | null {
  return /held by job ([0-9a-f-]{36})/.exec(message)?.[1] ?? null;
}

const COLUMNS: { header: string; value: (c: DemoCase) => string; right?: boolean }[] = [
  { header: 'case', value: (c) => c.label },
  { header: 'job', value: (c) => short(c.jid) },
  { header: 'type', value: (c) => c.row.jobType },
  { header: 'user', value: (c) => c.row.userId ?? '' },
  { header: 'group', value: (c) => c.row.group ?? '' },
  { header: 'state', value: (c) => c.row.state },
  { header: 'attempt', value: (c) => `${c.row.attempt}/${c.row.maxAttempts}` },
  { header: 'waited', value: (c) => (c.row.waitedMs === null ? '' : `${c.row.waitedMs} ms`), right: true },
  { header: 'took', value: (c) => (c.row.durationMs === null ? '' : `${Math.round(c.row.durationMs)} ms`), right: true },
  { header: 'note', value: (c) => noteOf(c.row) },
];

export const LEGEND = "attempt: the row's attempt / attempts allowed · waited: onBusy wait's time until it got its section · took: the row's start to its end · note: from the row's errors";

/** The demo's table: one line per case, columns padded, no index column. */
export function formatTable(cases: DemoCase[]): string {
  const cells = cases.map((c) => COLUMNS.map((col) => col.value(c)));
  const widths = COLUMNS.map((col, i) => Math.max(col.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values.map((v, i) => (COLUMNS[i]!.right ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(COLUMNS.map((c) => c.header)), ...cells.map(line)].join('\n');
}

export function summaryLine(cases: DemoCase[]): string {
  const count = (state: string) => cases.filter((c) => c.row.state === state).length;
  return `summary: jobs=${cases.length} ${['finished', 'failed', 'dead', 'skipped', 'started'].map((s) => `${s}=${count(s)}`).join(' ')}`;
}

/** What the demo prints after its jobs: the table, the legend and the summary. */
export function formatReport(cases: DemoCase[]): string {
  return `\n${formatTable(cases)}\n\n${LEGEND}\n${summaryLine(cases)}\n`;
}
