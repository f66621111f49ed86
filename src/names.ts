// The app's own names. The statements (src/sql.ts, queries.ts, maintenance/*) are written with
// the library's defaults: the table `job_logs` (and the summary tables job_log_periods and
// job_log_period_types, which live in its schema), the enums "JobType" and "JobState", the index
// job_logs_section_key, user ids as `text /*user_id*/`, and `/*fields:…*/` where the app's extra
// columns go. A job log reads its table from the catalog once, at start-up, and binds every
// statement to what it found: the table (and schema) the app chose, the enum types of its
// job_type and state columns, its section index, the type of its user_id column. Each rewrite is
// an exact replacement of one of those tokens by a quoted identifier read from the catalog, made
// once per statement: the hot path runs the bound text and pays nothing.
import { InvalidOptionsError, LogTableError } from './errors.ts';
import { USER_ID_TYPES, type UserIdType } from './ids.ts';
import type { PrismaLike } from './types.ts';

/** The columns the library writes itself; every other column may be filled by `fields`. */
export const LIBRARY_COLUMNS = [
  'id', 'jid', 'queue', 'job_type', 'state', 'user_id', 'group', 'attempt', 'max_attempts', 'holder_jid',
  'queued_at', 'started_at', 'finished_at', 'duration_ms', 'waited_ms', 'lease_until', 'error', 'errors',
  'created_at', 'updated_at',
] as const;

/** The table's name as the app gives it to createJobLog (`table`). */
export interface TableName {
  /** Default `job_logs`. */
  name: string;
  /** Default: the first schema of the connection's search_path that has the table. */
  schema?: string;
}

/** One column of the table, as the catalog describes it. */
export interface Column {
  name: string;
  /** `format_type()`: what a value is cast to, e.g. `integer`, `character varying(36)`, `"app"."Plan"`. */
  type: string;
}

/** An identifier quoted for SQL: `"name"` with inner quotes doubled. */
export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** The library's table as this app named and typed it. */
export class LogTable {
  /** `schema.table`, for messages. */
  readonly label: string;
  readonly userIdType: UserIdType;
  readonly sectionIndex: string;
  /** The table's columns by name. */
  readonly columns: ReadonlyMap<string, Column>;
  readonly #replacements: Record<string, string>;
  readonly #bound = new Map<string, Map<string, string>>();

  constructor(options: {
    schema: string; table: string; jobType: { schema: string; name: string }; jobState: { schema: string; name: string };
    sectionIndex: string; userIdType: UserIdType; columns: Column[];
  }) {
    this.label = `${options.schema}.${options.table}`;
    this.userIdType = options.userIdType;
    this.sectionIndex = options.sectionIndex;
    this.columns = new Map(options.columns.map((c) => [c.name, c]));
    const qualified = (o: { schema: string; name: string }) => `${quoteIdent(o.schema)}.${quoteIdent(o.name)}`;
    this.#replacements = {
      job_logs: qualified({ schema: options.schema, name: options.table }),
      // stats()' summaries (maintenance/summariser.ts): in the log table's schema, under these names
      job_log_periods: qualified({ schema: options.schema, name: 'job_log_periods' }),
      job_log_period_types: qualified({ schema: options.schema, name: 'job_log_period_types' }),
      '"JobType"': qualified(options.jobType),
      '"JobState"': qualified(options.jobState),
      job_logs_section_key: quoteIdent(options.sectionIndex),
      'text /*user_id*/': options.userIdType,
    };
  }

  /** The library's defaults (public.job_logs, its enums and index, a text user id): the statements as they are written. */
  static defaults(): LogTable {
    return new LogTable({
      schema: 'public', table: 'job_logs', jobType: { schema: 'public', name: 'JobType' }, jobState: { schema: 'public', name: 'JobState' },
      sectionIndex: 'job_logs_section_key', userIdType: 'text', columns: [],
    });
  }

  /**
   * `statement` with the library's names replaced by this table's, and its `/*fields:…*\/` marks
   * by the extra `columns` (see `fieldsSql`). Cached: each distinct statement is rewritten once.
   */
  bind(statement: string, columns: readonly Column[] = []): string {
    // Keyed by the statement itself (a constant string: its hash is computed once), then by the columns.
    let byColumns = this.#bound.get(statement);
    if (byColumns === undefined) {
      byColumns = new Map();
      // Statements built per call (find's filters) must not grow the cache without end.
      if (this.#bound.size < MAX_BOUND) this.#bound.set(statement, byColumns);
    }
    const key = columns.length === 0 ? '' : columns.map((c) => c.name).join('\0');
    let bound = byColumns.get(key);
    if (bound === undefined) {
      const fields = fieldsSql(columns, this.#replacements.job_logs!);
      bound = statement.replace(TOKENS, (token, mark?: keyof typeof fields) => (mark ? fields[mark] : this.#replacements[token]!));
      byColumns.set(key, bound);
    }
    return bound;
  }

  /**
   * Checks the columns a worker's (or section's) `fields` name: each must be a column of the
   * table that the library does not write itself. Throws InvalidOptionsError naming every bad one.
   */
  assertFieldColumns(names: readonly string[], where: string): void {
    const issues = names.flatMap((name) => {
      const problem = this.#fieldProblem(name);
      return problem ? [{ path: `fields.${name}`, message: problem }] : [];
    });
    if (issues.length > 0) throw new InvalidOptionsError(where, issues);
  }

  #fieldProblem(name: string): string | null {
    if ((LIBRARY_COLUMNS as readonly string[]).includes(name)) {
      return `the library writes the ${name} column itself; fields fill the app's own columns`;
    }
    if (this.columns.has(name)) return null;
    const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const hint = snake !== name && this.columns.has(snake) ? ` (there is a column ${snake}: fields are named by column, as @map names it)` : '';
    return `${this.label} has no column ${name}${hint}; add it to your JobLog model and migrate, or leave it out of fields`;
  }
}

const TOKENS = /"JobType"|"JobState"|\bjob_logs_section_key\b|\bjob_logs\b|\bjob_log_periods\b|\bjob_log_period_types\b|text \/\*user_id\*\/|\/\*fields:(def|cols|vals|single|section)\*\//g;
const MAX_BOUND = 2000;

/**
 * What the `/*fields:…*\/` marks of a claim statement become for extra columns: `def` in a
 * jsonb_to_recordset column list, `cols` in the INSERT's column list, `vals` the recordset's
 * values (`x.col`), `single` and `section` the values of the one-row statements, read from a
 * jsonb object parameter (`$9` of `claim`, `$7` of `claimSection`). Each leads with a comma.
 */
function fieldsSql(columns: readonly Column[], table: string): Record<'def' | 'cols' | 'vals' | 'single' | 'section', string> {
  const list = (f: (c: Column, q: string) => string) => columns.map((c) => `, ${f(c, quoteIdent(c.name))}`).join('');
  // The table's own row type types each value, whatever the column's type (jsonb included).
  const fromObject = (param: string) => list((_, q) => `(jsonb_populate_record(NULL::${table}, ${param}::jsonb)).${q}`);
  return {
    def: list((c, q) => `${q} ${c.type}`),
    cols: list((_, q) => q),
    vals: list((_, q) => `x.${q}`),
    single: fromObject('$9'),
    section: fromObject('$7'),
  };
}

/** One row of the catalog query. */
interface CatalogRow {
  schema: string | null;
  table: string | null;
  kind: string | null;
  columns: { name: string; type: string; kind: string; typeSchema: string; typeName: string }[] | null;
  section_indexes: string[] | null;
}

/**
 * The table, its columns and its section index: unique, partial, keyed on (user_id, "group"),
 * its predicate on state. Reads only the catalog, so it never waits for a lock on the table.
 */
const catalogStatement = `
SELECT n.nspname AS schema, c.relname AS table, c.relkind::text AS kind,
       (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                 'kind', t.typtype::text, 'typeSchema', tn.nspname, 'typeName', t.typname) ORDER BY a.attnum)
          FROM pg_attribute a
          JOIN pg_type t ON t.oid = a.atttypid
          JOIN pg_namespace tn ON tn.oid = t.typnamespace
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT json_agg(i.relname::text ORDER BY i.relname)
          FROM pg_index x
          JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid = c.oid AND x.indisunique AND x.indpred IS NOT NULL AND x.indnkeyatts = 2
           AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                  FROM unnest(x.indkey::int2[]) AS k(attnum)
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) = ARRAY['group', 'user_id']
           -- its predicate reads state (pg_get_expr would wait for a lock on the table)
           AND EXISTS (SELECT 1 FROM pg_depend d JOIN pg_attribute s ON s.attrelid = c.oid AND s.attname = 'state'
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid = s.attnum)) AS section_indexes
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = to_regclass($1::text)`;

/** Read the table from the catalog and check it is one the library can use. */
export async function readLogTable(prisma: PrismaLike, name: TableName): Promise<LogTable> {
  const relation = name.schema === undefined ? quoteIdent(name.name) : `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
  const shown = name.schema === undefined ? name.name : `${name.schema}.${name.name}`;
  const [row] = (await prisma.$queryRawUnsafe<CatalogRow[]>(catalogStatement, relation)) ?? [];
  if (!row?.table || !row.columns) {
    throw new LogTableError('LOG_TABLE_MISSING', `the job log table ${shown} does not exist${name.schema === undefined ? ' in the search_path' : ''}: migrate the JobLog model into this database, or name your table with createJobLog({ table: { name, schema } })`);
  }
  const label = `${row.schema}.${row.table}`;
  if (row.kind !== 'r' && row.kind !== 'p') {
    throw new LogTableError('LOG_TABLE_INVALID', `${label} is not a table (relkind ${row.kind})`);
  }
  const byName = new Map(row.columns.map((c) => [c.name, c]));
  const missing = LIBRARY_COLUMNS.filter((c) => !byName.has(c));
  if (missing.length > 0) {
    throw new LogTableError('LOG_TABLE_INVALID', `${label} lacks the column(s) ${missing.join(', ')} of the JobLog model: copy the model from the package's prisma/schema.prisma (keep the column names; map them with @map) and migrate`);
  }
  const enumOf = (column: 'job_type' | 'state') => {
    const c = byName.get(column)!;
    if (c.kind !== 'e') throw new LogTableError('LOG_TABLE_INVALID', `${label}.${column} must be an enum (the JobType / JobState enums of the model), got ${c.type}`);
    return { schema: c.typeSchema, name: c.typeName };
  };
  const userId = byName.get('user_id')!;
  if (!(USER_ID_TYPES as readonly string[]).includes(userId.type)) {
    throw new LogTableError('LOG_TABLE_INVALID', `${label}.user_id is ${userId.type}; the library supports ${USER_ID_TYPES.join(', ')} (String, String @db.Uuid, Int or BigInt in Prisma)`);
  }
  const [sectionIndex, ...others] = row.section_indexes ?? [];
  if (!sectionIndex) {
    throw new LogTableError('SECTION_INDEX_MISSING', `${label} has no partial unique index on (user_id, "group") WHERE state = 'started': without it sections are not enforced. Add it to a migration by hand (see docs/adding-to-your-app.md)`);
  }
  if (others.length > 0) {
    throw new LogTableError('LOG_TABLE_INVALID', `${label} has more than one section index (${[sectionIndex, ...others].join(', ')}); keep one`);
  }
  return new LogTable({
    schema: row.schema!, table: row.table, jobType: enumOf('job_type'), jobState: enumOf('state'), sectionIndex,
    userIdType: userId.type as UserIdType, columns: row.columns.map((c) => ({ name: c.name, type: c.type })),
  });
}

type RawClient = PrismaLike & {
  $executeRawUnsafe?(query: string, ...values: unknown[]): PromiseLike<number>;
  $transaction?(fn: unknown, options?: unknown): Promise<unknown>;
};

/**
 * The app's client with every raw statement bound to `table`, and so every interactive
 * transaction's client: what the queries, maintenance and actions run on. Everything else is the
 * client's own. `table` may be a function that reads it (once): a query then checks its options
 * before the table is read. (The hot path, LogStore, binds its statements itself; a fenced
 * transaction hands the app its own, unbound client.)
 */
export function boundClient<P extends RawClient>(prisma: P, table: LogTable | (() => Promise<LogTable>)): P {
  const withTable = <R>(fn: (t: LogTable) => R): R | Promise<Awaited<R>> =>
    typeof table === 'function' ? table().then(fn) as Promise<Awaited<R>> : fn(table);
  return new Proxy(prisma, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (typeof value !== 'function') return value;
      if (key === '$queryRawUnsafe' || key === '$executeRawUnsafe') {
        return (statement: string, ...values: unknown[]) => withTable((t) => value.call(target, t.bind(statement), ...values));
      }
      if (key === '$transaction') {
        return (fn: unknown, options?: unknown) => withTable((t) =>
          value.call(target, typeof fn === 'function' ? (tx: RawClient) => fn(boundClient(tx, t)) : fn, options));
      }
      return value.bind(target);
    },
  });
}
