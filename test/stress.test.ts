// A small run of `npm run stress` (scripts/stress.ts): worker processes, a witness table, the
// section against pg-boss's groupConcurrency. The full run (2,000 jobs, 4 processes) is the script.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, inject, test } from 'vitest';

const script = fileURLToPath(new URL('../scripts/stress.ts', import.meta.url));

test('stress, small: no overlap inside the section, one terminal row per job, none stuck or lost', async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [script, '--jobs', '150', '--workers', '2', '--users', '20'],
      { env: { ...process.env, DATABASE_URL: inject('serverUrl') }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  expect(last, stderr).toMatch(/^stress: jobs=150 overlaps_section=0 overlaps_groupConcurrency=\d+ stuck=0 lost=0$/);
  expect(code).toBe(0);
}, 120_000);
