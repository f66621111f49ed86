// Job types are the values of the app's "JobType" enum. A filter or a worker naming a type the
// enum does not have is refused before any query runs (a single unknown type used to reach the
// database as a cast error, several as an empty result). The enum is read once per client and
// read again only when asked for a type it did not have, at most every REREAD_MS.
import { InvalidOptionsError } from './errors.ts';
import type { PrismaLike } from './types.ts';

const REREAD_MS = 10_000;
const ENUM_VALUES = `SELECT unnest(enum_range(NULL::"JobType"))::text AS t`;

const cache = new WeakMap<PrismaLike, { at: number; types: Promise<string[]> }>();

function read(prisma: PrismaLike, again: boolean): Promise<string[]> {
  const cached = cache.get(prisma);
  if (cached && !(again && Date.now() - cached.at > REREAD_MS)) return cached.types;
  const types = Promise.resolve(prisma.$queryRawUnsafe<{ t: string }[]>(ENUM_VALUES)).then((rows) => rows.map((r) => r.t));
  const entry = { at: Date.now(), types };
  cache.set(prisma, entry);
  // A failed read is not kept: the next call asks again.
  types.catch(() => { if (cache.get(prisma) === entry) cache.delete(prisma); });
  return types;
}

/** Throws an InvalidOptionsError at `path` naming each type the "JobType" enum lacks and the ones it has. */
export async function assertJobTypes(prisma: PrismaLike, types: readonly string[], where: string, path: string): Promise<void> {
  let known = await read(prisma, false);
  if (types.every((t) => known.includes(t))) return;
  known = await read(prisma, true);
  const unknown = types.filter((t) => !known.includes(t));
  if (unknown.length === 0) return;
  const named = unknown.map((t) => JSON.stringify(t).replace(/^"|"$/g, "'")).join(', ');
  throw new InvalidOptionsError(where, [{
    path,
    message: `unknown job type ${named}; expected one of ${known.join(', ')} (the "JobType" enum)`,
  }]);
}
