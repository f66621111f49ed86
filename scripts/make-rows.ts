#!/usr/bin/env node
// Fill a database's job_logs with realistic rows, fast:
//   DATABASE_URL=postgres://… node scripts/make-rows.ts --rows 1000000 [--days 90] [--users 5000]
import { parseArgs } from 'node:util';
import pg from 'pg';
import { makeRows } from './lib/make-rows.ts';

const USAGE = `usage: node scripts/make-rows.ts --rows N [--days 90] [--users 5000] [--database-url URL]
  adds N rows to job_logs (the migrations must have been applied) of DATABASE_URL`;

function positive(name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`make-rows: --${name} must be a positive integer, got ${JSON.stringify(value ?? null)}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        rows: { type: 'string' },
        days: { type: 'string' },
        users: { type: 'string' },
        'database-url': { type: 'string' },
      },
    }));
  } catch (error) {
    console.error(`make-rows: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const rows = positive('rows', values.rows);
  const days = positive('days', values.days, 90);
  const users = positive('users', values.users, 5000);
  const url = values['database-url'] ?? process.env.DATABASE_URL;
  if (!url) {
    console.error(`make-rows: set DATABASE_URL or pass --database-url\n${USAGE}`);
    process.exit(2);
  }
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const started = performance.now();
  try {
    await makeRows(pool, {
      rows, days, users,
      onProgress: (made) => process.stderr.write(`\r${made.toLocaleString('en')} / ${rows.toLocaleString('en')} rows`),
    });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write('\n');
    console.log(`made ${rows} rows in ${seconds.toFixed(1)} s (${Math.round(rows / seconds)} rows/s)`);
  } finally {
    await pool.end();
  }
}

main().catch((error) => {
  console.error(`make-rows: ${(error as Error).message}`);
  process.exit(1);
});
