// onBusy: 'throw': a busy attempt writes no row (a `started` row would hold the section it did
// not get), so its trace travels with the job instead. Its pg-boss `output`, which pg-boss hands
// to the next attempt, carries the busy attempts so far; the attempt that gets its section (or
// the last one, busy again) writes them into the row's `errors`, one entry per busy attempt.
import type { JobWithMetadata } from 'pg-boss';
import { z } from 'zod';
import type { SectionBusyError } from './errors.ts';
import { recordError } from './rows.ts';
import { ERRORS_KEPT } from './sql.ts';
import type { RecordedError } from './types.ts';

/** The job's row as the busy attempt would have written it (store.ts's JobIdentity fits). */
interface BusyIdentity {
  attempt: number;
  type: string;
  userId: string | null;
  group: string | null;
}

/** One busy attempt, as it goes into `errors`. */
export interface BusyAttempt {
  attempt: number;
  /** When pg-boss started the attempt (database clock); null if pg-boss did not say. */
  at: string | null;
  /** The job that held the section (the message may be cut short before it names it). */
  holderJid: string | null;
  error: RecordedError;
}

const busyAttempts = z.array(z.object({
  attempt: z.number().int().positive(),
  at: z.string().nullable(),
  holderJid: z.string().nullable(),
  error: z.object({ name: z.string(), message: z.string(), code: z.string().optional() }),
}));

/** The busy attempts before this one, from the previous attempt's output; none when it was not busy. */
export function busyHistoryOf(job: JobWithMetadata<unknown>): BusyAttempt[] {
  const carried = (job.output as { joblogBusy?: unknown } | null | undefined)?.joblogBusy;
  const parsed = busyAttempts.safeParse(carried);
  return parsed.success ? parsed.data : [];
}

/**
 * The output of a busy attempt that pg-boss retries: the error, as any failed attempt's output,
 * the busy attempts so far (this one last; no stack, it is the library's own), and the row's
 * identity, which the reaper needs to write a row should pg-boss end the job before it has one.
 */
export function busyOutput(job: JobWithMetadata<unknown>, identity: BusyIdentity, error: SectionBusyError): Record<string, unknown> {
  const recorded = recordError(error);
  const { stack: _stack, ...entry } = recorded;
  const at = job.startedOn ? new Date(job.startedOn).toISOString() : null;
  const history = capped([...busyHistoryOf(job), { attempt: identity.attempt, at, holderJid: error.holderJid, error: entry }]);
  return { ...recorded, joblog: { type: identity.type, userId: identity.userId, group: identity.group }, joblogBusy: history };
}

/** As many as `errors` keeps, the same way: the first, and the latest ERRORS_KEPT − 1. */
function capped(history: BusyAttempt[]): BusyAttempt[] {
  return history.length <= ERRORS_KEPT ? history : [history[0]!, ...history.slice(-(ERRORS_KEPT - 1))];
}
