// One worker process of the scaling measurement: its own PgBoss, Prisma client and job log on the
// bench database. Told by its parent (IPC) when to start working and when to stop.
import { PrismaPg } from '@prisma/adapter-pg';
import { PgBoss } from 'pg-boss';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { createJobLog } from '../../src/index.ts';
import { BOSS_OPTIONS } from './context.ts';
import { type DrainShape, type Mode, startWorker } from './throughput.ts';

interface Orders {
  url: string;
  queue: string;
  mode: Mode;
  shape: DrainShape;
}

const orders = JSON.parse(process.argv[2]!) as Orders;
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: orders.url, max: 10 }) });
const boss = new PgBoss({ connectionString: orders.url, max: 10, ...BOSS_OPTIONS });
boss.on('error', (error) => process.send?.({ error: error.message }));
await boss.start();
const joblog = createJobLog({ prisma, boss });

process.on('message', async (message: string) => {
  if (message === 'go') {
    await startWorker(boss, joblog, orders.mode, orders.queue, orders.shape);
  } else if (message === 'stop') {
    await boss.stop({ graceful: false });
    await prisma.$disconnect();
    process.disconnect();
  }
});
process.send!('ready');
