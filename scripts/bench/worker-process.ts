// A worker process of the bench: its own PgBoss, Prisma client, job log and pg pool on the bench
// database, so its CPU time is the worker's alone. Its parent (worker-host.ts) tells it over IPC
// which queue to drain in which mode, and when to stop; on stop it reports the CPU it used.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { createJobLog } from '../../src/index.ts';
import { BOSS_OPTIONS } from './context.ts';
import { startWorker } from './throughput.ts';
import type { Order, Reply } from './worker-host.ts';

const url = process.argv[2]!;
const send = (reply: Reply) => process.send!(reply);
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 10 }) });
const boss = new PgBoss({ connectionString: url, max: 10, ...BOSS_OPTIONS });
boss.on('error', (error) => send({ warning: `pg-boss: ${error.message}` }));
await boss.start();
const joblog = createJobLog({ prisma, boss });
const joblogViaBoss = createJobLog({ prisma, boss, writesThrough: 'pg-boss', reaper: false });
for (const log of [joblog, joblogViaBoss]) log.on('warning', (w) => send({ warning: `joblog: ${w.message}` }));
const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on('error', () => {}); // an idle connection cut when the bench database is dropped WITH (FORCE)

let current: { queue: string; cpu: NodeJS.CpuUsage } | undefined;

process.on('message', async (order: Order) => {
  try {
    if (order === 'exit') {
      await boss.stop({ graceful: false });
      await prisma.$disconnect();
      await pool.end();
      process.disconnect();
    } else if (order === 'stop') {
      const cpu = process.cpuUsage(current!.cpu);
      await boss.offWork(current!.queue);
      current = undefined;
      send({ cpuMicros: cpu.user + cpu.system });
    } else {
      current = { queue: order.go.queue, cpu: process.cpuUsage() };
      await startWorker({ boss, joblog, joblogViaBoss, pool }, order.go.mode, order.go.queue, order.go.shape);
    }
  } catch (error) {
    send({ failed: String((error as Error).stack ?? error) });
  }
});
send('ready');
