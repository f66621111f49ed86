#!/usr/bin/env node
// Where a tracked worker's own CPU goes: a CPU profile of one drain, summed by package.
//   node scripts/profile-tracker.ts [--jobs 20000] [--batch 50] [--workers 4]
// A new database on the server of DATABASE_URL (or an embedded server), migrated; `--jobs` no-op
// jobs with a section each (one user per job) sent to one queue and drained by tracked workers
// while node:inspector's profiler samples this process. Prints the self time per job of the
// library's own functions (src/), of Prisma, pg and pg-boss, and of the rest; the database is
// dropped afterwards. The bench's CPU per job says how much; this says where.
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import { PgBoss } from 'pg-boss';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog } from '../src/index.ts';
import { databaseUrl, migrate, startEmbeddedServer, withClient } from './lib/database.ts';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' }, batch: { type: 'string', default: '50' }, workers: { type: 'string', default: '4' } } });
const [jobs, batchSize, workers] = [Number(values.jobs), Number(values.batch), Number(values.workers)];
if (![jobs, batchSize, workers].every((n) => Number.isSafeInteger(n) && n > 0)) {
  console.error('usage: node scripts/profile-tracker.ts [--jobs N] [--batch N] [--workers N]');
  process.exit(2);
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string } }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Where a frame's code lives: the library's own file, a package, or Node and the engine. */
function owner(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  const own = /\/src\/(.+)$/.exec(url)?.[1];
  if (own && !url.includes('/generated/')) return `src/${own}`;
  if (url.includes('/src/generated/')) return '@prisma/client (generated)';
  return url === '' ? '(engine: idle, GC, native)' : '(node)';
}

const server = process.env.DATABASE_URL ? { url: process.env.DATABASE_URL, stop: async () => {} } : await startEmbeddedServer();
const name = `joblog_profile_${randomBytes(3).toString('hex')}`;
await withClient(server.url, (c) => c.query(`CREATE DATABASE ${name}`));
const url = databaseUrl(server.url, name);
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
boss.on('error', (error) => console.error('pg-boss', error));
try {
  await migrate(url);
  await boss.start();
  const joblog = createJobLog({ prisma, boss, reaper: false, summaries: false });
  const queue = 'profile';
  await boss.createQueue(queue);
  for (let i = 0; i < jobs; i += 1000) {
    await boss.insert(queue, Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ data: { userId: `user-${i + k}` } })));
  }
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  let done = 0;
  let drained!: () => void;
  const all = new Promise<void>((resolve) => (drained = resolve));
  const cpu = process.cpuUsage();
  for (let w = 0; w < workers; w++) {
    await joblog.work<{ userId: string }>(queue, { type: 'report_export', group: 'profile', userId: (j) => j.data.userId, batchSize, pollingIntervalSeconds: 0.5 }, async () => {
      if (++done === jobs) drained();
    });
  }
  await all;
  const used = process.cpuUsage(cpu);
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  session.disconnect();
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  const own = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = frames.get(id)!;
    const micros = profile.timeDeltas[i] ?? 0;
    const where = frame.functionName === '(idle)' ? '(idle)' : owner(frame.url);
    self.set(where, (self.get(where) ?? 0) + micros);
    if (where.startsWith('src/')) own.set(`${frame.functionName || '(anonymous)'} ${where}`, (own.get(`${frame.functionName || '(anonymous)'} ${where}`) ?? 0) + micros);
  });
  const perJob = (micros: number) => (micros / jobs).toFixed(1).padStart(7);
  const ownTotal = [...self].filter(([k]) => k.startsWith('src/')).reduce((n, [, v]) => n + v, 0);
  console.log(`${jobs} jobs, batch ${batchSize} × ${workers} workers: process CPU ${((used.user + used.system) / jobs).toFixed(1)} µs/job (pg-boss's own work, the log's statements' client side and the library)`);
  console.log(`self time, µs per job:\n${perJob(ownTotal)}  the library's own code (src/, all files)`);
  const groups = new Map<string, number>();
  for (const [k, v] of self) if (!k.startsWith('src/') && k !== '(idle)') groups.set(k, v);
  for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`${perJob(v)}  ${k}`);
  console.log('the library\'s functions with the most self time, µs per job:');
  for (const [k, v] of [...own].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`${perJob(v)}  ${k}`);
} finally {
  await boss.stop({ graceful: false }).catch(() => {});
  await prisma.$disconnect();
  await withClient(server.url, (c) => c.query(`DROP DATABASE ${name} WITH (FORCE)`));
  await server.stop();
}
