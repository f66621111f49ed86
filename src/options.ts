import { z } from 'zod';
import { checkDuration } from './duration.ts';
import { InvalidOptionsError } from './errors.ts';
import { checkGroup, groupSchema, userIdSchema } from './ids.ts';

// Options are validated once, where they enter (createJobLog, work, section). Unknown keys are
// rejected: a misspelt option that is silently ignored is a bug that shows up in production.

const fn = (what: string) =>
  z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function', { message: `expected ${what}` });

const objectWith = (method: string, what: string) =>
  z.custom<object>(
    (v) => typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[method] === 'function',
    { message: `expected ${what} (an object with a ${method}() method)` },
  );

const positiveInt = z.int().positive();
const name = z.string().trim().min(1, 'must be a non-empty string');

/**
 * `object` for an object value, `other` for anything else. Unlike a union, the issues of the
 * branch that applies are kept, so the message names the bad field inside the object.
 */
function objectOr<O extends z.ZodType, S extends z.ZodType>(object: O, other: S) {
  return z.unknown().transform((value, ctx): z.output<O> | z.output<S> => {
    const schema = typeof value === 'object' && value !== null ? object : other;
    const result = schema.safeParse(value);
    if (result.success) return result.data as z.output<O> | z.output<S>;
    for (const issue of result.error.issues) {
      ctx.addIssue({ code: 'custom', message: messageOf(issue), path: issue.path });
    }
    return z.NEVER;
  });
}

const seconds = z.number().positive('must be a positive number of seconds').max(365 * 24 * 3600, 'must be at most a year');
const holdMap = <K extends z.ZodString>(key: K) =>
  z.record(key, seconds, { error: (issue) => (issue.code === 'invalid_type' ? 'expected an object { name: seconds }' : undefined) });
// A group as a record key (a string schema): the same rule as every other group.
const groupKey = z.string().superRefine((value, ctx) => {
  const result = checkGroup(value);
  if (!result.ok) ctx.addIssue({ code: 'custom', message: result.problem });
});

/** Per section group and per job type: the longest a job may hold its section while waiting for its retry. */
export const maxHoldSchema = z.strictObject({
  byGroup: holdMap(groupKey).default({}),
  byType: holdMap(z.string().min(1, 'must be a non-empty string')).default({}),
});

export const bossSchemaName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected a plain schema name (pg-boss's schema option)")
  .default('pgboss');

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, 'expected a plain SQL identifier (letters, digits, _ and $, at most 63 characters)');

/** The app's table: `'name'` or `{ name, schema }`. */
export const tableSchema = objectOr(
  z.strictObject({ name: identifier.default('job_logs'), schema: identifier.optional() }),
  identifier.transform((name) => ({ name, schema: undefined })),
);

export const reaperOptionsSchema = z.strictObject({
  intervalSeconds: z.number().min(0.1, 'must be at least 0.1 seconds').max(24 * 3600).default(60),
  maxHoldSeconds: maxHoldSchema.default({ byGroup: {}, byType: {} }),
});

export const summaryScheduleSchema = z.strictObject({
  intervalSeconds: z.number().min(0.1, 'must be at least 0.1 seconds').max(24 * 3600).default(60),
  graceSeconds: z.number().min(0).max(7 * 86_400, 'at most a week').default(600),
});

export const jobLogOptionsSchema = z.strictObject({
  prisma: objectWith('$queryRawUnsafe', "the app's PrismaClient"),
  boss: objectWith('work', 'a PgBoss instance').optional(),
  reaper: objectOr(reaperOptionsSchema, z.literal(false, {
    message: 'expected false or { intervalSeconds?, maxHoldSeconds?: { byGroup?, byType? } }',
  })).optional(),
  bossSchema: bossSchemaName,
  prune: z.lazy(() => pruneScheduleSchema).optional(),
  table: tableSchema.default({ name: 'job_logs', schema: undefined }),
  summaries: objectOr(summaryScheduleSchema, z.literal(false, {
    message: 'expected false or { intervalSeconds?, graceSeconds? }',
  })).optional(),
  writesThrough: z.enum(['prisma', 'pg-boss'], { message: "expected 'prisma' or 'pg-boss'" }).default('prisma'),
  tracing: z.boolean().default(true),
}).refine((o) => o.writesThrough !== 'pg-boss' || o.boss !== undefined, {
  path: ['writesThrough'],
  message: "'pg-boss' writes through the boss's own pool: pass boss too",
});

/** The states `prune()` may delete. `started` rows are never pruned: they may hold a section. */
export const PRUNABLE_STATES = ['finished', 'skipped', 'failed', 'dead'] as const;

export const prunableStatesSchema = z
  .array(z.enum(PRUNABLE_STATES, { message: `expected some of ${PRUNABLE_STATES.join(', ')} (started rows are never pruned)` }))
  .min(1, 'give at least one state, or leave it out for all settled states');

/** The `prune` option of createJobLog: prune every `intervalSeconds` while the log lives. */
export const pruneScheduleSchema = z.strictObject({
  // The value as given (a duration), checked now: a bad one would fail every scheduled pass.
  olderThan: z.custom<number | string>().superRefine((v, ctx) => {
    const result = checkDuration(v);
    if (result.ok) return;
    const message = result.unreadable
      ? "expected a duration such as '30d' or milliseconds (a fixed date would prune nothing new on later passes)"
      : result.problem;
    ctx.addIssue({ code: 'custom', message });
  }),
  states: prunableStatesSchema.optional(),
  batchSize: z.int().min(1).max(100_000).optional(),
  intervalSeconds: z.number().min(1, 'must be at least 1 second').max(7 * 24 * 3600, 'must be at most a week').default(3600),
});

export const waitPolicySchema = z.strictObject({
  wait: z.strictObject({
    retryEverySeconds: z.number().min(1, 'must be at least 1 second').max(24 * 3600),
    giveUpAfterSeconds: seconds,
  }),
});

export const busyPolicySchema = objectOr(waitPolicySchema, z.enum(['skip', 'throw'], {
  message: "expected 'skip', 'throw' or { wait: { retryEverySeconds, giveUpAfterSeconds } }",
}));

const standardSchema = z.custom<object>(
  (v) => typeof v === 'object' && v !== null && '~standard' in v,
  { message: 'expected a zod schema (or any Standard Schema)' },
);

/** A worker's group: a function (its result is checked per job), or a string checked now. */
const groupOption = z.unknown().transform((value, ctx): string | ((...args: any[]) => unknown) => {
  if (typeof value === 'function') return value as (...args: any[]) => unknown;
  const result = checkGroup(value);
  if (result.ok) return result.value;
  ctx.addIssue({ code: 'custom', message: typeof value === 'string' ? result.problem : 'expected a string or a function (job) => string' });
  return z.NEVER;
});

export const workOptionsSchema = z.strictObject({
  type: name,
  group: groupOption.optional(),
  userId: fn('a function (job) => user id').optional(),
  fields: z.record(z.string().min(1), fn('a function (job) => value'), { message: 'expected an object { column: (job) => value }' }).optional(),
  schema: standardSchema.optional(),
  onBusy: busyPolicySchema.default('throw'),
  retryable: z.boolean().default(true),
  batchSize: positiveInt.default(1),
  localConcurrency: positiveInt.optional(),
  pollingIntervalSeconds: z.number().min(0.5).optional(),
  notifyPollingIntervalSeconds: z.number().positive().optional(),
  burstWhenReadyExceeds: z.int().nonnegative().optional(),
  burstWhenBatchFull: z.boolean().optional(),
  heartbeatRefreshSeconds: z.number().positive().optional(),
  minPriority: z.int().optional(),
  maxPriority: z.int().optional(),
});

export const sectionOptionsSchema = z.strictObject({
  jid: z.uuid({ message: 'expected a UUID' }).optional(),
  type: name,
  userId: userIdSchema,
  group: groupSchema,
  queue: name.default('section'),
  leaseSeconds: z.number().min(1, 'must be at least 1 second').max(24 * 3600).default(30),
  fields: z.record(z.string().min(1), z.unknown(), { message: 'expected an object { column: value }' }).optional(),
});

export const queueNameSchema = name;

/** An issue's message in our words: unknown keys listed, a bad record key by its own check's words. */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown option(s) ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  return issue.message;
}

/** Parse options or throw an InvalidOptionsError naming every bad field. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: messageOf(issue),
  }));
  throw new InvalidOptionsError(where, issues, { cause: result.error });
}
