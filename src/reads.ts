// Bounded reads: a read given a statement timeout or an abort signal runs in a transaction of
// its own, so `SET LOCAL statement_timeout` holds for its statements only and its backend can be
// found and cancelled while it runs. A read given neither runs as it always did.
import { z } from 'zod';
import { JobLogError, QueryTimeoutError, ReadCancelledError } from './errors.ts';
import { parseOptions } from './options.ts';
import * as sql from './sql.ts';
import type { PrismaLike, ReadOptions } from './types.ts';

/** What the dashboard and the CLI give each statement unless told otherwise. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5000;

/** A read runs at most this many statements after `beginRead`: the transaction's own limit. */
const STATEMENTS_PER_READ = 3;

export const readOptionsSchema = z.strictObject({
  statementTimeoutMs: z.int().min(1).max(2_147_483_647, 'at most 2147483647 (PostgreSQL\'s limit)').optional(),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'expected an AbortSignal' }).optional(),
});

const QUERY_CANCELED = '57014';
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
  if (typeof prisma.$transaction !== 'function') {
    throw new JobLogError('NO_TRANSACTIONS', `${what}: statementTimeoutMs and signal need the client's $transaction (a PrismaClient has it)`);
  }
  if (signal?.aborted) throw new ReadCancelledError(what, { cause: signal.reason });
  const limit = timeoutMs ?? 0;
  try {
    return await prisma.$transaction(
      async (tx: PrismaLike) => {
        if (signal?.aborted) throw new ReadCancelledError(what, { cause: signal.reason });
        const [backend] = await tx.$queryRawUnsafe<{ pid: number; xact_start: string }[]>(sql.beginRead, timeoutMs ?? null);
        const cancel = () => void Promise.resolve(prisma.$queryRawUnsafe(sql.cancelRead, backend!.pid, backend!.xact_start)).catch(() => {});
        signal?.addEventListener('abort', cancel, { once: true });
        try {
          return await read(tx);
        } finally {
          signal?.removeEventListener('abort', cancel);
        }
      },
      // Without a timeout Prisma's defaults apply (2 s to get a connection, 5 s in all).
      timeoutMs === undefined ? undefined : { maxWait: limit, timeout: limit * STATEMENTS_PER_READ + 1000 },
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
