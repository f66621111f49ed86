import { z } from 'zod';
import { InvalidOptionsError } from './errors.ts';

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

export const jobLogOptionsSchema = z.strictObject({
  prisma: objectWith('$queryRawUnsafe', "the app's PrismaClient"),
  boss: objectWith('work', 'a PgBoss instance').optional(),
});

export const busyPolicySchema = z.enum(['skip', 'throw'], {
  message: "expected 'skip' or 'throw'",
});

const standardSchema = z.custom<object>(
  (v) => typeof v === 'object' && v !== null && '~standard' in v,
  { message: 'expected a zod schema (or any Standard Schema)' },
);

export const workOptionsSchema = z.strictObject({
  type: name,
  group: z.union([name, fn('a function')], { message: 'expected a string or a function (job) => string' }).optional(),
  userId: fn('a function (job) => user id').optional(),
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
  userId: z.union([name, z.number(), z.bigint()], { message: 'expected a string or number user id' }),
  group: name,
  queue: name.default('section'),
});

export const queueNameSchema = name;

/** Parse options or throw an InvalidOptionsError naming every bad field. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.code === 'unrecognized_keys' ? `unknown option(s) ${issue.keys.join(', ')}` : issue.message,
  }));
  throw new InvalidOptionsError(where, issues, { cause: result.error });
}
