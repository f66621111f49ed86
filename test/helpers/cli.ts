// The joblog CLI as a child process, as a user or a script runs it.
import { execFile } from 'node:child_process';
import path from 'node:path';

export const CLI_MAIN = path.resolve(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `joblog …args` with DATABASE_URL `url` (unless env says otherwise); stdout is a pipe. */
export function runCli(url: string, args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_MAIN, ...args], {
      env: { ...process.env, DATABASE_URL: url, TZ: 'UTC', JOBLOG_DEBUG: undefined, ...env },
      timeout: 40_000,
    }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
