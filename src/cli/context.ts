// What a command runs with: its output streams and style, and a job log on a PrismaClient the
// CLI makes from the URL (the CLI is an application; the library never makes a client).
import { JobLogError } from '../errors.ts';
import type { JobLog } from '../joblog.ts';
import type { PrismaLike } from '../types.ts';
import { str, UsageError, type Parsed } from './args.ts';
import { toJson, type OutputStyle } from './format.ts';

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
}

export class CommandContext {
  readonly io: Io;
  readonly style: OutputStyle;
  readonly json: boolean;
  readonly #url: string | undefined;
  readonly #bossSchema: string | undefined;
  /** createJobLog's `table`: `--log-table schema.name` or `name`. */
  readonly #logTable: { table: { name: string; schema?: string } } | Record<string, never>;
  #client: { prisma: PrismaLike & { $disconnect(): Promise<void> }; joblog: JobLog } | undefined;
  #boss: { stop(options?: { graceful?: boolean }): Promise<void> } | undefined;
  #actionLog: JobLog | undefined;

  constructor(io: Io, values: Parsed['values']) {
    this.io = io;
    const tty = io.stdout.isTTY === true;
    this.json = values.json === true || (!tty && values.table !== true);
    this.style = { utc: values.utc === true, columns: tty ? io.stdout.columns : undefined };
    this.#url = str(values['database-url']) ?? io.env.DATABASE_URL;
    this.#bossSchema = str(values['boss-schema']);
    this.#logTable = logTableOf(str(values['log-table']) ?? io.env.JOBLOG_TABLE);
  }

  /** The database URL, checked for shape (not reachability). */
  get url(): string {
    const url = this.#url;
    if (!url) throw new UsageError('no database: set DATABASE_URL or pass --database-url');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError('--database-url: not a URL; expected postgres://user:password@host:5432/database');
    }
    if (!/^postgres(ql)?:$/.test(parsed.protocol)) {
      throw new UsageError(`--database-url: expected a postgres:// URL, got ${parsed.protocol}//…`);
    }
    return url;
  }

  /** A job log without pg-boss (read, prune, reap) on a PrismaClient of its own. */
  async joblog(): Promise<JobLog> {
    return (await this.#open()).joblog;
  }

  /**
   * A job log with a PgBoss of the CLI's own (for retry and cancel, which go through pg-boss): it
   * neither migrates pg-boss's schema, supervises nor schedules, and is stopped by close().
   */
  async joblogWithBoss(): Promise<JobLog> {
    if (!this.#actionLog) {
      const { prisma } = await this.#open();
      const [{ PgBoss }, { createJobLog }] = await Promise.all([import('pg-boss'), import('../joblog.ts')]);
      const schema = this.#bossSchema;
      const boss = new PgBoss({ connectionString: this.url, ...(schema === undefined ? {} : { schema }), supervise: false, schedule: false, migrate: false });
      boss.on('error', () => {}); // a failing action reports its own error
      await boss.start();
      this.#boss = boss;
      this.#actionLog = createJobLog({ prisma, boss, reaper: false, ...this.#logTable, ...(schema === undefined ? {} : { bossSchema: schema }) });
    }
    return this.#actionLog;
  }

  async #open() {
    if (!this.#client) {
      const url = this.url;
      // The library is loaded here, not at start-up, so --version, --help and usage errors skip it.
      const [{ PrismaClient }, { PrismaPg }, { createJobLog }] = await Promise.all([importPrismaClient(), importAdapter(), import('../joblog.ts')]);
      const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
      const bossSchema = this.#bossSchema;
      this.#client = { prisma, joblog: createJobLog({ prisma, ...this.#logTable, ...(bossSchema === undefined ? {} : { bossSchema }) }) };
    }
    return this.#client;
  }

  /** Writes a result: JSON, or the table that `render` makes. */
  print(value: unknown, render: () => string): void {
    this.io.stdout.write(`${this.json ? toJson(value) : render()}\n`);
  }

  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  async close(): Promise<void> {
    await this.#boss?.stop({ graceful: false });
    await this.#client?.prisma.$disconnect();
  }
}

// An optional peer of the library: only the CLI needs it.
async function importAdapter(): Promise<typeof import('@prisma/adapter-pg')> {
  try {
    return await import('@prisma/adapter-pg');
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new JobLogError('MISSING_PEER', 'the joblog CLI needs the optional peer @prisma/adapter-pg: npm install @prisma/adapter-pg@7', { cause: error });
  }
}

// Raw queries are all the CLI sends, so the package's own generated client serves any app's
// schema. It is generated (npm test, npm run demo, npx prisma generate), not committed.
async function importPrismaClient() {
  try {
    return await import('../generated/prisma/client.ts');
  } catch (error) {
    throw new Error('the Prisma client is not generated yet: run `npx prisma generate` in the pg-boss-joblog package', { cause: error });
  }
}

/** `schema.name` or `name` (createJobLog checks each part). */
function logTableOf(value: string | undefined): { table: { name: string; schema?: string } } | Record<string, never> {
  if (value === undefined) return {};
  const dot = value.indexOf('.');
  return { table: dot < 0 ? { name: value } : { schema: value.slice(0, dot), name: value.slice(dot + 1) } };
}
