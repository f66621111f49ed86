// Per-file test databases, cloned from the template that global-setup.ts migrated.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PgBoss, type ConstructorOptions } from 'pg-boss';
import { afterAll, beforeAll, inject } from 'vitest';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { databaseUrl, dropDatabase, ident, withClient } from './postgres.ts';

export interface TestDatabase {
  name: string;
  url: string;
  /** Drops the database, disconnecting anyone still connected. */
  drop(): Promise<void>;
}

export interface TestDb {
  readonly url: string;
  readonly prisma: PrismaClient;
  readonly pool: pg.Pool;
  /** A started PgBoss on this database (supervise and schedule off); stopped by close(). */
  boss(options?: Partial<ConstructorOptions>): Promise<PgBoss>;
}

export interface OpenTestDb extends TestDb {
  /** Stops every boss, disconnects Prisma and the pool, and drops the database. */
  close(options?: { keep?: boolean }): Promise<void>;
}

/** Creates an empty-but-migrated database `joblog_<label>_<random>` from the template. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const serverUrl = inject('serverUrl');
  const slug = label.toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 40);
  const name = `joblog_${slug}_${randomBytes(4).toString('hex')}`;
  await cloneTemplate(serverUrl, name, inject('templateDatabase'));
  return { name, url: databaseUrl(serverUrl, name), drop: () => dropDatabase(serverUrl, name) };
}

async function cloneTemplate(serverUrl: string, name: string, template: string): Promise<void> {
  const sql = `CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)}`;
  for (let attempt = 1; ; attempt++) {
    try {
      await withClient(serverUrl, (client) => client.query(sql));
      return;
    } catch (error) {
      // 55006 "source database is being accessed by other users": two clones raced.
      const inUse = (error as { code?: string }).code === '55006';
      if (!inUse || attempt >= 20) throw error;
      await sleep(50 + Math.random() * 200);
    }
  }
}

/** A cloned database with a Prisma client, a pg pool and a PgBoss factory. Call close() when done. */
export async function openTestDb(label: string): Promise<OpenTestDb> {
  const database = await createTestDatabase(label);
  const { url } = database;
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
  const pool = new pg.Pool({ connectionString: url });
  const bosses: PgBoss[] = [];

  return {
    url,
    prisma,
    pool,
    async boss(options = {}) {
      const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false, ...options });
      boss.on('error', (error) => console.error(`pg-boss (${database.name}):`, error));
      bosses.push(boss);
      return boss.start();
    },
    async close({ keep = false } = {}) {
      await Promise.all(bosses.map((boss) => boss.stop({ graceful: false })));
      await prisma.$disconnect();
      await pool.end();
      if (keep) console.warn(`kept test database for inspection: ${url}`);
      else await database.drop();
    },
  };
}

/**
 * Registers beforeAll/afterAll hooks that give the calling test file its own database.
 * The returned object is usable inside tests and hooks, not at module level.
 * With JOBLOG_KEEP_FAILED_DB=1 the database of a file with a failed test is kept.
 */
export function setupTestDb(label: string): TestDb {
  let db: OpenTestDb | undefined;
  beforeAll(async () => {
    db = await openTestDb(label);
  });
  afterAll(async ({}, file) => {
    await db?.close({ keep: process.env.JOBLOG_KEEP_FAILED_DB === '1' && hasFailure(file) });
  });
  const current = (): OpenTestDb => {
    if (!db) throw new Error(`setupTestDb('${label}'): the database exists only once beforeAll has run`);
    return db;
  };
  return {
    get url() { return current().url; },
    get prisma() { return current().prisma; },
    get pool() { return current().pool; },
    boss: (options) => current().boss(options),
  };
}

interface TaskLike {
  result?: { state?: string };
  tasks?: readonly TaskLike[];
}

function hasFailure(task: TaskLike): boolean {
  return task.result?.state === 'fail' || (task.tasks ?? []).some(hasFailure);
}
