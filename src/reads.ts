// Bounded reads: a read given a statement timeout or an abort signal runs in a transaction of
// its own, so `SET LOCAL statement_timeout` holds for its statements only and its backend can be
// found and cancelled while it runs. A read given neither runs as it always did.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { JobLogError, QueryTimeoutError, ReadCancelledError } from './errors.ts';
import { parseOptions } from './options.ts';
import * as sql from './sql.ts';
import type { TransactionalPrisma } from './store.ts';
import type { PrismaLike, ReadOptions } from './types.ts';

/** What the dashboard and the CLI give each statement unless told otherwise. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5000;

/** A read runs at most this many statements after `beginRead`: the transaction's own limit. */
const STATEMENTS_PER_READ = 3;

const QUERY_CANCELED = '57014';
const CANCEL_RETRY_MS = 50;
const MAX_TIMER_MS = 2_147_483_647;

export const readOptionsSchema = z.strictObject({
  statementTimeoutMs: z.int().min(1).max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} (PostgreSQL's limit)`).optional(),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'expected an AbortSignal' }).optional(),
});

// Prisma's interactive transaction found no connection within maxWait, or outlived its timeout.
const TRANSACTION_TIMED_OUT = 'P2028';

/** Runs `read` on `prisma`, or bounded in its own transaction when `options` ask for it. */
export async function boundedRead<T>(
  prisma: PrismaLike,
  what: string,
  options: ReadOptions | undefined,
  read: (db: PrismaLike) => Promise<T>,
): Promise<T> {
  const { statementTimeoutMs: timeoutMs, signal } = parseOptions(readOptionsSchema, options ?? {}, `${what} (read options)`);
  if (timeoutMs === undefined && signal === undefined) return read(prisma);
  const client = prisma as TransactionalPrisma;
  if (typeof client.$transaction !== 'function') {
    throw new JobLogError('NO_TRANSACTIONS', `${what}: statementTimeoutMs and signal need the client's $transaction (a PrismaClient has it)`);
  }
  if (signal?.aborted) throw new ReadCancelledError(what, { cause: signal.reason });
  try {
    return await client.$transaction(
      async (tx) => {
        const [backend] = await tx.$queryRawUnsafe<{ pid: number; xact_start: string }[]>(sql.beginRead, timeoutMs ?? null);
        let over = false;
        // A cancel that lands between two statements cancels nothing: send it again until the
        // read is over. The guard in cancelRead keeps it off the connection once it serves others.
        const cancel = async () => {
          while (!over) {
            await Promise.resolve(prisma.$queryRawUnsafe(sql.cancelRead, backend!.pid, backend!.xact_start)).catch(() => {});
            await sleep(CANCEL_RETRY_MS);
          }
        };
        const onAbort = () => void cancel();
        signal?.addEventListener('abort', onAbort, { once: true });
        // No statement starts once the signal has aborted.
        const guarded: PrismaLike = {
          $queryRawUnsafe: (query: string, ...values: unknown[]) =>
            signal?.aborted ? Promise.reject(new ReadCancelledError(what, { cause: signal.reason })) : tx.$queryRawUnsafe(query, ...values),
        };
        try {
          return await read(guarded);
        } finally {
          over = true;
          signal?.removeEventListener('abort', onAbort);
        }
      },
      // Prisma's own limits on an interactive transaction (by default 2 s to get a connection, 5 s
      // in all) follow the timeout; a read with a signal only is not limited in time.
      timeoutMs === undefined
        ? { timeout: MAX_TIMER_MS }
        : { maxWait: timeoutMs, timeout: Math.min(MAX_TIMER_MS, timeoutMs * STATEMENTS_PER_READ + 1000) },
    );
  } catch (error) {
    if (error instanceof JobLogError) throw error;
    if (signal?.aborted) throw new ReadCancelledError(what, { cause: error });
    if (timeoutMs !== undefined && (databaseCode(error) === QUERY_CANCELED || (error as { code?: unknown }).code === TRANSACTION_TIMED_OUT)) {
      throw new QueryTimeoutError(what, timeoutMs, { cause: error });
    }
    throw error;
  }
}

/** The SQLSTATE of a failed statement, through Prisma's and its pg adapter's wrapping. */
function databaseCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; meta?: { driverAdapterError?: { cause?: { code?: unknown } } } };
  const code = e?.meta?.driverAdapterError?.cause?.code ?? e?.code;
  return typeof code === 'string' ? code : undefined;
}
