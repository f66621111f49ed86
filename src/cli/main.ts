#!/usr/bin/env node
// joblog: the job log from the command line. Exit codes: 0 ok, 1 runtime or database error,
// 2 usage error (command, flag or value), 3 not found (show), 4 action refused, 130 interrupted (prune).
import { readFile } from 'node:fs/promises';
import { InvalidOptionsError, QueryTimeoutError } from '../errors.ts';
import { COMMON_HELP, parseFlags, UsageError } from './args.ts';
import { CommandContext, type Io } from './context.ts';
import { listCommand, sectionsCommand, showCommand, statsCommand, type Command } from './commands/read.ts';
import { dashboardCommand, pruneCommand, reapCommand } from './commands/write.ts';
import { cancelCommand, releaseCommand, retryCommand } from './commands/actions.ts';
import { ActionRefusedError } from '../errors.ts';
import { describeError } from './errors.ts';

export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, refused: 4 } as const;

const COMMANDS: Record<string, Command> = {
  list: listCommand,
  show: showCommand,
  stats: statsCommand,
  sections: sectionsCommand,
  reap: reapCommand,
  prune: pruneCommand,
  retry: retryCommand,
  cancel: cancelCommand,
  release: releaseCommand,
  dashboard: dashboardCommand,
};

const HELP = `usage: joblog <command> [flags]

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`).join('\n')}

${COMMON_HELP}

exit codes: 0 ok, 1 runtime or database error, 2 wrong command, flag or value,
            3 not found (show), 4 action refused (retry, cancel, release), 130 interrupted (prune)
'joblog <command> --help' shows the command's flags; 'joblog --version' the version.`;

/** Option paths of the library that a flag of another name sets. */
const FLAG_OF: Record<string, string> = { userId: 'user', types: 'type', states: 'state', bossSchema: 'boss-schema' };

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(`${HELP}\n`);
    return EXIT.usage;
  }
  if (name === '--version' || name === '-v') {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.stdout.write(`${pkg.version}\n`);
    return EXIT.ok;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.stderr.write(`joblog: unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')})\n`);
    return EXIT.usage;
  }
  let ctx: CommandContext | undefined;
  try {
    const parsed = parseFlags(name, rest, command.options, command.positionals ?? 0);
    if (parsed.values.help) {
      io.stdout.write(`usage: ${command.usage}\n\n${COMMON_HELP}\n`);
      return EXIT.ok;
    }
    ctx = new CommandContext(io, parsed.values);
    return await command.run(ctx, parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      const message = error.message.startsWith(`${name}:`) ? error.message : `${name}: ${error.message}`;
      io.stderr.write(`joblog ${message} (see joblog ${name} --help)\n`);
      return EXIT.usage;
    }
    if (error instanceof ActionRefusedError) {
      io.stderr.write(`joblog ${name}: ${error.message}\n`);
      return EXIT.refused;
    }
    if (error instanceof InvalidOptionsError) {
      io.stderr.write(`joblog ${name}: ${error.issues.map((i) => `${flagName(name, i.path)}: ${i.message}`).join('; ')}\n`);
      return EXIT.usage;
    }
    const hint = error instanceof QueryTimeoutError ? ' (--statement-timeout MS)' : '';
    io.stderr.write(`joblog ${name}: ${describeError(error).replace(`${name}: `, '')}${hint}\n`);
    if (io.env.JOBLOG_DEBUG === '1') io.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT.error;
  } finally {
    await ctx?.close().catch(() => {});
  }
}

function flagName(command: string, path: string): string {
  if (command === 'show') return '<jid>';
  const head = path.split('.')[0] ?? '';
  if (!head) return 'arguments';
  if (command === 'prune' && head === 'states') return '--states';
  const flag = FLAG_OF[head] ?? head.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return `--${flag}`;
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
  // Flush stdout before exiting: a pipe reader must get every byte of the JSON.
  process.stdout.write('', () => process.exit(code));
}
