// The one rule for the two columns that name a section, user_id and "group": what a worker's
// userId(job) / group(job) returns, what section() is given, and what find, sections,
// inProgress, holder, the dashboard and the CLI filter by. A value is taken exactly as given:
// nothing is trimmed anywhere, and a value with leading or trailing white space is refused,
// so ' bob ' can never be a section that 'bob' does not name.
import { checkedSchema, ok, problem, type Checked } from './checked.ts';

/**
 * Caps in UTF-8 bytes. PostgreSQL refuses a btree entry over 2704 bytes (54000 "index row size
 * exceeds maximum"); the section index holds both columns, so together they stay well under it.
 */
export const USER_ID_MAX_BYTES = 1024;
export const GROUP_MAX_BYTES = 1024;

// Control characters (C0, DEL, C1): NUL cannot be stored in text at all, and the others are
// never part of an identifier but do reach terminals and logs verbatim.
const CONTROL = /\p{Cc}/u;
const EDGE_SPACE = /^\s|\s$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(value: string, maxBytes: number): Checked<string> {
  if (value.length === 0) return problem('must be a non-empty string');
  const control = CONTROL.exec(value);
  if (control) {
    const code = control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return problem(`must not contain control characters (U+${code} at index ${control.index})`);
  }
  if (LONE_SURROGATE.test(value)) return problem('must be well-formed Unicode (it has a lone surrogate)');
  if (EDGE_SPACE.test(value)) return problem('must not start or end with white space (values are never trimmed)');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) return problem(`must be at most ${maxBytes} bytes of UTF-8, got ${bytes}`);
  return ok(value);
}

/** A user id as stored: a string as is, an integer (safe number or bigint) in decimal. */
export function checkUserId(value: unknown): Checked<string> {
  if (typeof value === 'string') return checkText(value, USER_ID_MAX_BYTES);
  if (typeof value === 'bigint') return ok(value.toString());
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return ok(String(value));
    return problem(Number.isInteger(value)
      ? `expected a string or integer user id, got ${value}, past Number.MAX_SAFE_INTEGER: pass it as a bigint or a string`
      : `expected a string or integer user id, got ${value}`);
  }
  return problem(`expected a string or integer user id, got ${value === null ? 'null' : typeof value}`);
}

export function checkGroup(value: unknown): Checked<string> {
  if (typeof value === 'string') return checkText(value, GROUP_MAX_BYTES);
  return problem(`expected a string, got ${value === null ? 'null' : typeof value}`);
}

export const userIdSchema = checkedSchema(checkUserId);
export const groupSchema = checkedSchema(checkGroup);

/**
 * A worker's `userId(job)` result: null when there is none (undefined or null), else the
 * stored text. Throws a TypeError naming the problem (the tracker turns it into an
 * InvalidPayloadError).
 */
export function normaliseUserId(value: unknown): string | null {
  return value === null || value === undefined ? null : orThrow(checkUserId(value));
}

/** A worker's group (static or `group(job)`): null when there is none, else the checked text. */
export function normaliseGroup(value: unknown): string | null {
  return value === null || value === undefined ? null : orThrow(checkGroup(value));
}

/** The user_id column types the library can cast a user id to (read from the catalog: names.ts). */
export const USER_ID_TYPES = ['text', 'uuid', 'integer', 'bigint'] as const;
export type UserIdType = (typeof USER_ID_TYPES)[number];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIMAL = /^-?(0|[1-9][0-9]*)$/;
const INTEGER_RANGES = { integer: 2n ** 31n, bigint: 2n ** 63n } as const;

/**
 * A stored user id (checkUserId's output) against the type of the table's user_id column: a uuid
 * column takes a UUID, an integer or bigint column a decimal integer in its range.
 */
export function checkUserIdType(id: string, type: UserIdType): Checked<string> {
  if (type === 'text') return ok(id);
  const shown = JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id);
  if (type === 'uuid') return UUID.test(id) ? ok(id) : problem(`must be a UUID (the user_id column is uuid), got ${shown}`);
  const limit = INTEGER_RANGES[type];
  if (DECIMAL.test(id) && BigInt(id) >= -limit && BigInt(id) < limit) return ok(id);
  return problem(`must be an integer from ${-limit} to ${limit - 1n} (the user_id column is ${type}), got ${shown}`);
}

/** `normaliseUserId`, then `checkUserIdType`: what a worker's or a caller's user id is stored as. */
export function userIdFor(value: unknown, type: UserIdType): string | null {
  const id = normaliseUserId(value);
  return id === null ? null : orThrow(checkUserIdType(id, type));
}

function orThrow(result: Checked<string>): string {
  if (!result.ok) throw new TypeError(result.problem);
  return result.value;
}
