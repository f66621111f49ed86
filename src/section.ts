import { randomUUID } from 'node:crypto';
import { SectionBusyError } from './errors.ts';
import { SECTION_COLUMNS, SECTION_INDEX } from './sql.ts';
import type { LogStore } from './store.ts';
import { logWriteFailed, type WarningSink } from './tracker.ts';
import type { SectionOptions } from './types.ts';

/**
 * Run `fn` inside a (user, group) section outside pg-boss, with a row of its own in the log:
 * `finished` when `fn` resolves, `failed` when it throws. Throws `SectionBusyError` when
 * another job holds the section.
 *
 * Such a row has no pg-boss job for the reaper to consult, so it holds the section by a lease
 * (`lease_until`) that this process renews every third of `leaseSeconds` while `fn` runs. If the
 * process dies, renewals stop, and once the lease has passed the next claim of the section ends the
 * row (`dead`, LEASE_EXPIRED) and takes it, as the reaper would: no reaper needs to run.
 */
export async function runSection<R>(
  store: LogStore,
  options: Required<Omit<SectionOptions, 'jid' | 'userId' | 'fields'>> & { jid?: string; userId: string; fields?: Record<string, unknown> },
  fn: (ctx: { jid: string }) => Promise<R>,
  warn: WarningSink,
): Promise<R> {
  const jid = options.jid ?? randomUUID();
  const job = {
    jid,
    queue: options.queue,
    type: options.type,
    userId: options.userId,
    group: options.group,
    attempt: 1,
    maxAttempts: 1,
    queuedAt: null,
    ...(options.fields ? { fields: options.fields } : {}),
  };
  const claim = await store.claimSection(job, options.leaseSeconds);
  if (claim.outcome === 'busy') throw new SectionBusyError(options.userId, options.group, claim.holderJid);
  if (claim.outcome !== 'claimed') {
    throw new SectionBusyError(options.userId, options.group, jid, {
      cause: new Error(`a row with jid ${jid} already exists (${claim.outcome})`),
    });
  }
  const renewal = keepLease(store, jid, options.leaseSeconds);
  let result: R;
  try {
    result = await fn({ jid });
  } catch (error) {
    renewal.stop();
    await settle(warn, jid, () => store.recordFailure(jid, 1, error, 'failed'));
    throw error;
  }
  renewal.stop();
  await settle(warn, jid, () => store.finish(jid, 1));
  return result;
}

/**
 * Write the section's final row. A failed write is a warning: the caller gets `fn`'s own result or
 * error, never the log's, and the row, still `started`, frees the section when its lease passes.
 */
async function settle(warn: WarningSink, jid: string, write: () => Promise<boolean>): Promise<void> {
  try {
    await write();
  } catch (cause) {
    logWriteFailed(warn, 'settle', jid, 1, cause);
  }
}

/** Renew a section's lease every third of its length until stopped or lost. */
function keepLease(store: LogStore, jid: string, leaseSeconds: number): { stop(): void } {
  const timer = setInterval(() => {
    // A failed renewal is tried again next time: the lease is three renewals long.
    store.renewLease(jid, leaseSeconds).then((held) => { if (!held) clearInterval(timer); }, () => {});
  }, (leaseSeconds * 1000) / 3);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * True for "another job holds this section", however it arrives: a `SectionBusyError`, a
 * Prisma P2002 (ORM call) or P2010 (raw query) on the section index, or a plain `pg` error
 * 23505 on it. A violation of any other unique index is not "busy". `index`: the app's name for
 * the section index when it is not `job_logs_section_key` (also `joblog.isSectionBusyError`).
 * Prisma 5, 6 and 7 describe the violation differently (test/fixtures/prisma-errors holds a real
 * error of each).
 */
export function isSectionBusyError(error: unknown, index: string = SECTION_INDEX): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof SectionBusyError) return true;
    if (isPrismaSectionViolation(e, index) || isPgSectionViolation(e, index)) return true;
  }
  return false;
}

function isPrismaSectionViolation(e: unknown, index: string): boolean {
  const { code, meta, message } = e as { code?: unknown; meta?: Record<string, any>; message?: unknown };
  if (code !== 'P2002' && code !== 'P2010') return false;
  const cause = meta?.driverAdapterError?.cause;
  if (cause) {
    // 7 names the index; 6 lists its columns.
    return cause.originalCode === '23505'
      && (cause.constraint?.index === index || isSectionColumns(cause.constraint?.fields));
  }
  // 5, ORM call: the index's columns (or, on some connectors, its name) as `target`.
  if (meta?.target !== undefined) return meta.target === index || isSectionColumns(meta.target);
  // 5, raw query: Postgres' code and its detail line, "Key (user_id, "group")=(…) already exists."
  if (meta?.code !== undefined) return meta.code === '23505' && isSectionColumns(keyColumns(meta.message));
  // A shape not seen yet: its message may still quote the index's name.
  return typeof message === 'string' && (message.includes(`"${index}"`) || message.includes(`\`${index}\``));
}

/** The columns of Postgres' unique-violation detail; the values after them are the app's data. */
function keyColumns(detail: unknown): string[] | undefined {
  if (typeof detail !== 'string') return undefined;
  return /^Key \(([^)]+)\)=/.exec(detail)?.[1]?.split(', ');
}

/** `user_id` and `group`, in that order, quoted or not: the section index's columns. */
function isSectionColumns(columns: unknown): boolean {
  if (!Array.isArray(columns) || columns.length !== SECTION_COLUMNS.length) return false;
  return columns.every((c, i) => typeof c === 'string' && c.replace(/^"(.*)"$/, '$1') === SECTION_COLUMNS[i]);
}

function isPgSectionViolation(e: unknown, index: string): boolean {
  const { code, constraint } = e as { code?: unknown; constraint?: unknown };
  return code === '23505' && constraint === index;
}
