// The bench's own database: a fresh one on the DATABASE_URL server (dropped afterwards), or an
// embedded server started for the run. Migrated with the committed migrations.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { databaseUrl, migrate, openDatabase, withClient } from '../lib/database.ts';

export interface BenchDatabase {
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}

export async function openBenchDatabase(): Promise<BenchDatabase> {
  const name = `joblog_bench_${randomBytes(3).toString('hex')}`;
  const server = process.env.DATABASE_URL;
  if (!server) {
    const db = await openDatabase(name);
    await migrate(db.url);
    return db;
  }
  await withClient(server, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = databaseUrl(server, name);
  const drop = () =>
    withClient(server, (client) => client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)).then(() => {});
  try {
    await migrate(url);
  } catch (error) {
    await drop();
    throw error;
  }
  return { url, embedded: false, stop: drop };
}
