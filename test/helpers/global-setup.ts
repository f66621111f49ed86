// Vitest global setup: one PostgreSQL server and one migrated template database per run.
// Every test file clones its own database from the template (see db.ts).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgBoss } from 'pg-boss';
import type { TestProject } from 'vitest/node';
import { startEmbeddedServer, type Server } from '../../scripts/lib/database.ts';
import { databaseUrl, dropDatabase, ident, withClient } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A maintenance database on the test server (never the template): for CREATE/DROP DATABASE. */
    serverUrl: string;
    /** The migrated template to clone. Nobody may connect to it (it has ALLOW_CONNECTIONS false). */
    templateDatabase: string;
  }
}

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server: Server = process.env.DATABASE_URL
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
