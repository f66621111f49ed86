// The packed library in an app that is not this repository (test/fixtures/app): `npm pack`, then
// `npm install <tarball>` into a copy of the app, its own `prisma generate` and `migrate deploy`
// (its migrations were made with the recipe of docs/adding-to-your-app.md), and its tracked
// jobs, whose rows it reads through its own Prisma client. The app's other dependencies (pg-boss,
// Prisma) are the repository's, linked in, so the test needs no network and takes about a minute.
// Run by `npm run test:app` (a step of .ci/run of its own), not by `npm test`.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { databaseUrl, dropDatabase, ident, withClient } from './helpers/postgres.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '..');
const fixture = path.join(repo, 'test', 'fixtures', 'app');
const repoModules = path.join(repo, 'node_modules');
/** What the app links from the repository: its own dependencies, and the schema-engine stand-in's optional peers. */
const LINKED = [
  'pg-boss', 'prisma', 'pg', '@prisma/client', '@prisma/adapter-pg', '@prisma/driver-adapter-utils', '@prisma/schema-engine-wasm',
  'typescript', '@types/node',
];

let dir = '';
let url = '';
let dbName = '';
const timings: Record<string, number> = {};

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    timings[name] = Math.round(performance.now() - start);
  }
}

/** Runs node in the app; `env` adds variables, and removes those it sets to undefined. */
function node(args: string[], env: Record<string, string | undefined> = {}) {
  const merged = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined));
  return run(process.execPath, args, { cwd: path.join(dir, 'app'), env: merged, maxBuffer: 16 << 20 });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'joblog-fixture-app-'));
  const app = path.join(dir, 'app');
  const { stdout } = await timed('npm pack', () => run('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: repo, maxBuffer: 16 << 20 }));
  const tarball = path.join(dir, stdout.trim().split('\n').at(-1)!);
  await cp(fixture, app, { recursive: true, filter: (src) => !/[/\\](node_modules|generated)$/.test(src) });
  // npm installs the tarball and its own dependency (zod); the peers are the app's, linked below
  // after the install so npm does not prune them as extraneous.
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'joblog-fixture-app', private: true, type: 'module' }));
  await timed('npm install <tarball>', () => run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--legacy-peer-deps', '--ignore-scripts', '--no-package-lock', tarball], { cwd: app }));
  for (const name of LINKED) {
    await mkdir(path.dirname(path.join(app, 'node_modules', name)), { recursive: true });
    await symlink(path.join(repoModules, name), path.join(app, 'node_modules', name), 'dir');
  }
  await timed('prisma generate', () => node(['node_modules/prisma/build/index.js', 'generate']));

  const serverUrl = inject('serverUrl');
  dbName = `joblog_fixture_app_${process.pid}`;
  await withClient(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${ident(dbName)} TEMPLATE template0`);
  });
  url = databaseUrl(serverUrl, dbName);
  // The app's prisma.config.ts points the CLI at the installed package's schema-engine stand-in.
  await timed('prisma migrate deploy', () => node(['node_modules/prisma/build/index.js', 'migrate', 'deploy'], { DATABASE_URL: url, PRISMA_SCHEMA_ENGINE_BINARY: undefined }));
}, 240_000);

afterAll(async () => {
  console.log(`fixture app timings (ms): ${JSON.stringify(timings)}`);
  if (dbName) await dropDatabase(inject('serverUrl'), dbName);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the installed package is the tarball (not the repository), with dist and no src', async () => {
  const installed = path.join(dir, 'app', 'node_modules', 'pg-boss-joblog');
  const entries = await readdir(installed);
  expect(entries).toContain('dist');
  expect(entries).not.toContain('src');
  expect(entries).not.toContain('test');
});

test('the app type-checks against the installed package\'s declarations (fields, table, typed ids)', async () => {
  await timed('tsc', () => node(['node_modules/typescript/bin/tsc', '-p', '.']));
});

test('tracked jobs in the app: success, retry, dead, busy, a deleted user, an invalid id, deleting a user who holds a section', async () => {
  const { stdout } = await timed('scenarios', () => node(['src/scenarios.ts'], { DATABASE_URL: url }));
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
  const { rows } = out;
  expect(rows.success).toMatchObject({ state: 'finished', attempt: 1, userId: 1, userEmail: 'alice@example.com', organizationId: 1, organization: 'Acme' });
  expect(rows.retry).toMatchObject({ state: 'finished', attempt: 2, userEmail: 'alice@example.com', organizationId: 1, errors: 1 });
  expect(rows.dead).toMatchObject({ state: 'dead', attempt: 2, userEmail: 'alice@example.com', errors: 2, errorMessage: 'sync failed (attempt 2)' });
  expect(rows.busy).toMatchObject({ state: 'skipped', userEmail: 'bob@example.com', errorCode: 'SECTION_BUSY' });
  expect(rows.holder).toMatchObject({ state: 'finished', userEmail: 'bob@example.com', organizationId: 1 });
  // The deleted user's job: refused by the foreign key, recorded failed without the user, never retried.
  expect(rows.deletedUser).toMatchObject({ state: 'failed', attempt: 1, userId: null, errorCode: 'INVALID_PAYLOAD' });
  expect(rows.deletedUser.errorMessage).toContain('job_history_user_id_fkey');
  expect(rows.invalidId).toMatchObject({ state: 'failed', attempt: 1, userId: null, errorCode: 'INVALID_PAYLOAD' });
  expect(rows.invalidId.errorMessage).toContain('the user_id column is integer');
  // onDelete: Restrict: the section stays held, and a user with history goes only once anonymised.
  expect(out).toMatchObject({ deleteWhileHeld: 'P2003', stillHeld: true, deleteWithHistory: 'P2003', deletedAfterAnonymising: true });
}, 120_000);
