// The commands that act on one job: retry, cancel, release (see src/actions.ts).
import type { ActionName, ActionResult } from '../../actions.ts';
import type { JobLog } from '../../joblog.ts';
import { str, UsageError } from '../args.ts';
import type { CommandContext } from '../context.ts';
import type { Command } from './read.ts';

function actionCommand(action: ActionName, summary: string, detail: string, viaBoss: boolean): Command {
  return {
    summary,
    usage: `joblog ${action} <jid> [--by NAME]
  --by NAME            who asks, recorded in the row's history (default $USER)
  ${detail}
  exits 4 when the action is refused (the message says why), 0 when done or already done`,
    options: { by: { type: 'string' } },
    positionals: 1,
    async run(ctx: CommandContext, { positionals, values }) {
      const jid = positionals[0];
      if (!jid) throw new UsageError(`${action}: give the job id, e.g. joblog ${action} 0b6f…-…`);
      const joblog: JobLog = viaBoss ? await ctx.joblogWithBoss() : await ctx.joblog();
      const by = str(values.by) ?? ctx.io.env.USER;
      const result: ActionResult = await joblog[action](jid, by ? { by } : {});
      ctx.print(result, () => `${action}: job ${jid} ${result.changed ? 'is now' : 'was already'} ${result.row.state}`);
      return 0;
    },
  };
}

export const retryCommand = actionCommand('retry', 'retry a dead or failed job through pg-boss (its row is started again)',
  'refused for a finished or skipped job, a job pg-boss no longer has, or while its section is held', true);
export const cancelCommand = actionCommand('cancel', 'cancel a started job in pg-boss; its row ends dead',
  'refused for a job that already ended', true);
export const releaseCommand = actionCommand('release', "free the section of a started row whose holder is gone (reap, for one row)",
  'refused while the holder is alive (its pg-boss job runs or waits for a retry, or its lease runs)', false);
