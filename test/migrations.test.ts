// The committed migrations, applied by the real Prisma CLI (through scripts/schema-engine.mjs),
// give exactly the schema in prisma/schema.prisma plus the hand-written partial unique index.
// The CLI migrates a database of its own, created empty on the test server (DATABASE_URL's, or
// the embedded one global-setup.ts started), not cloned from the template.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { databaseUrl as urlOf, dropDatabase, withClient } from './helpers/postgres.ts';

const TIMEOUT = 60_000;
const projectRoot = fileURLToPath(new URL('..', import.meta.url));
const prismaCli = fileURLToPath(new URL('../node_modules/prisma/build/index.js', import.meta.url));

const serverUrl = inject('serverUrl');
const database = `joblog_migrations_${process.pid}`;
const databaseUrl = urlOf(serverUrl, database);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the Prisma CLI against the test database; resolves with its exit code, never rejects. */
function prisma(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [prismaCli, ...args],
      { cwd: projectRoot, env: { ...process.env, DATABASE_URL: databaseUrl }, timeout: TIMEOUT },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function describeResult({ code, stdout, stderr }: CliResult): string {
  return `exit code ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
}

describe('prisma/migrations', { timeout: TIMEOUT }, () => {
  let deploy: CliResult;

  beforeAll(async () => {
    await dropDatabase(serverUrl, database);
    await withClient(serverUrl, (client) => client.query(`CREATE DATABASE "${database}"`));
    deploy = await prisma('migrate', 'deploy');
  }, TIMEOUT);

  afterAll(() => dropDatabase(serverUrl, database), TIMEOUT);

  it('apply cleanly with `prisma migrate deploy`', async () => {
    expect(deploy.code, describeResult(deploy)).toBe(0);
    expect(deploy.stdout).toContain('All migrations have been successfully applied.');
    const { rows } = await withClient(databaseUrl, (client) =>
      client.query<{ migration_name: string }>(
        'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      ),
    );
    expect(rows.map((row) => row.migration_name)).toContain('20261130000000_init');
  });

  it('leave no difference between the database and prisma/schema.prisma', async () => {
    const diff = await prisma('migrate', 'diff', '--from-config-datasource', '--to-schema', 'prisma/schema.prisma', '--exit-code');
    expect(diff.code, describeResult(diff)).toBe(0);
    // The CLI also exits 0 when the engine dies without answering: check it really compared.
    expect(diff.stdout).toContain('No difference detected.');
  });

  it('make `migrate diff --exit-code` exit 2 on a real difference (so 0 above means empty)', async () => {
    const diff = await prisma('migrate', 'diff', '--from-empty', '--to-config-datasource', '--exit-code');
    expect(diff.code, describeResult(diff)).toBe(2);
    expect(diff.stdout).toContain('job_logs');
  });

  it('create the hand-written partial unique index job_logs_section_key', async () => {
    const { rows } = await withClient(databaseUrl, (client) =>
      client.query<{ indexdef: string }>(
        `SELECT indexdef FROM pg_indexes
          WHERE schemaname = 'public' AND tablename = 'job_logs' AND indexname = 'job_logs_section_key'`,
      ),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.indexdef).toBe(
      `CREATE UNIQUE INDEX job_logs_section_key ON public.job_logs USING btree (user_id, "group") WHERE (state = 'started'::"JobState")`,
    );
  });

  it('leave `prisma migrate status` up to date', async () => {
    const status = await prisma('migrate', 'status');
    expect(status.code, describeResult(status)).toBe(0);
    expect(status.stdout).toContain('Database schema is up to date!');
  });
});
