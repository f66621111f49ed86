#!/usr/bin/env node
// Stands in for Prisma's native `schema-engine` binary, which cannot be downloaded here, so the
// real Prisma CLI (`migrate deploy | dev | status | diff | reset`) can run. prisma.config.ts points
// PRISMA_SCHEMA_ENGINE_BINARY at this file. It runs Prisma's own schema engine compiled to
// WebAssembly (@prisma/schema-engine-wasm, same engines commit as the CLI) and talks to PostgreSQL
// through @prisma/adapter-pg.
//
// It speaks what the CLI (prisma 7.10) speaks to the binary:
//   --version                                        prints one line
//   --datasource <json> cli <command>                one-shot: can-connect-to-database,
//                                                    create-database, drop-database; exit 0 or 1
//   --datamodels <file>… --datasource <json> […]     JSON-RPC 2.0, one JSON object per line
//                                                    on stdin/stdout; logs go to stderr
// Plain ESM JavaScript so that it also runs on Node 20, which the CLI may find first on PATH.

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } from '@prisma/driver-adapter-utils';
import * as glue from '@prisma/schema-engine-wasm/schema_engine_bg';

// Anything written to stdout by a library would corrupt the JSON-RPC stream.
console.log = console.info = console.debug = console.warn = console.error;
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

const RPC_ERROR_CODE = 4466;
const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;
const SHADOW_DB_REQUIRED = 'shadow DB must be provided through an external factory';

// ---------------------------------------------------------------------------------------------
// Command line

function parseCommandLine(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      datamodels: { type: 'string', multiple: true },
      datasource: { type: 'string' },
      'enabled-preview-features': { type: 'string' },
      'extension-types': { type: 'string' },
      version: { type: 'boolean', short: 'V' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  return {
    version: values.version ?? false,
    help: values.help ?? false,
    datamodelPaths: values.datamodels ?? [],
    datasource: parseDatasource(values.datasource),
    previewFeatures: values['enabled-preview-features'],
    cliCommand: positionals[0] === 'cli' ? positionals[1] ?? '' : undefined,
    unexpected: positionals[0] === 'cli' ? positionals.slice(2) : positionals,
  };
}

/** `--datasource` is the config's datasource as JSON: `{ url, shadowDatabaseUrl? }`. */
function parseDatasource(json) {
  if (json === undefined) return {};
  try {
    const { url, shadowDatabaseUrl } = JSON.parse(json);
    return { url, shadowDatabaseUrl };
  } catch (error) {
    throw new Error(`--datasource is not valid JSON: ${error.message}`);
  }
}

const USAGE = `Usage: schema-engine.mjs [--datamodels <file>]... [--datasource <json>]
       schema-engine.mjs --datasource <json> cli can-connect-to-database|create-database|drop-database
       schema-engine.mjs --version`;

// ---------------------------------------------------------------------------------------------
// Logging: one JSON object per stderr line, in the native engine's tracing format

function logLine(level, fields, target = 'schema_engine_cli') {
  process.stderr.write(`${JSON.stringify({ timestamp: new Date().toISOString(), level, fields, target })}\n`);
}

/** The CLI reads `fields.error_code` and `fields.message` from an ERROR line with this target. */
function logError(error) {
  const known = toKnownError(error);
  logLine('ERROR', { is_panic: false, error_code: known.code ?? '', message: known.message }, 'schema_engine::logger');
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL connections

/**
 * adapter-pg cannot map PostgreSQL's internal one-byte `"char"` type (pg_class.relkind,
 * pg_constraint.contype and the like), and the engine reads such catalog columns as characters.
 * Let adapter-pg read them as text, and tag their names so that `charColumnsAsCharacter` can
 * report them to the engine as characters (a text value there fails "as char" as soon as a row
 * has one, e.g. the NOT NULL constraints PostgreSQL 18 lists in pg_constraint).
 */
const CHAR_TAG = '\u0000char';

function charAsText(result) {
  for (const each of [result].flat()) {
    for (const field of each?.fields ?? []) {
      if (field.dataTypeID !== PG_CHAR_OID) continue;
      field.dataTypeID = PG_TEXT_OID;
      field.name += CHAR_TAG;
    }
  }
  return result;
}

/** The other half of charAsText, on the adapter's result set: tagged columns become characters. */
function charColumnsAsCharacter(adapter) {
  const queryRaw = adapter.queryRaw.bind(adapter);
  adapter.queryRaw = async (query) => {
    const result = await queryRaw(query);
    result.columnNames = result.columnNames.map((name, i) => {
      if (!name.endsWith(CHAR_TAG)) return name;
      result.columnTypes[i] = ColumnTypeEnum.Character;
      return name.slice(0, -CHAR_TAG.length);
    });
    return result;
  };
}

class CharAsTextClient extends pg.Client {
  query(...args) {
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last];
      args[last] = (error, result) => callback(error, error ? result : charAsText(result));
      return super.query(...args);
    }
    const pending = super.query(...args);
    return typeof pending?.then === 'function' ? pending.then(charAsText) : pending;
  }
}

function requireUrl(url) {
  if (!url) throw new Error('No database URL: set datasource.url in prisma.config.ts (DATABASE_URL).');
  return url;
}

function withDatabase(url, database) {
  const copy = new URL(url);
  copy.pathname = `/${encodeURIComponent(database)}`;
  return copy.toString();
}

function describeUrl(url) {
  const parsed = new URL(url);
  return {
    host: decodeURIComponent(parsed.hostname || 'localhost'),
    port: parsed.port || '5432',
    user: decodeURIComponent(parsed.username || process.env.PGUSER || ''),
    database: decodeURIComponent(parsed.pathname.slice(1)) || 'postgres',
    schema: parsed.searchParams.get('schema') ?? undefined,
  };
}

function quoteIdent(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

async function withClient(url, work) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs on the server's maintenance database, as the native engine does for CREATE/DROP DATABASE. */
async function withMaintenanceClient(url, work) {
  try {
    return await withClient(withDatabase(url, 'postgres'), work);
  } catch (error) {
    if (error.code !== '3D000') throw error;
    return withClient(withDatabase(url, 'template1'), work);
  }
}

async function dropDatabase(client, name) {
  try {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } catch (error) {
    if (error.code !== '42601') throw error; // WITH (FORCE) needs PostgreSQL 13+
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`);
  }
}

async function connectAdapter(url) {
  const { schema } = describeUrl(url);
  const factory = new PrismaPg({ connectionString: url, Client: CharAsTextClient }, schema ? { schema } : undefined);
  const adapter = await factory.connect();
  runScriptsWhole(adapter);
  charColumnsAsCharacter(adapter);
  return adapter;
}

/**
 * adapter-pg's executeScript splits the script on every `;`, which breaks migrations holding
 * `DO $$ … $$` blocks, functions or a `;` in a comment or string. The native engine sends a
 * migration to PostgreSQL as one simple query; do the same.
 */
function runScriptsWhole(adapter) {
  adapter.executeScript = async (script) => {
    try {
      await adapter.underlyingDriver().query(script);
    } catch (error) {
      adapter.onError(error);
    }
  };
}

// Shadow databases this process created and has not dropped yet, dropped on exit.
const liveShadowDatabases = new Set();

/**
 * adapter-pg's own connectToShadowDb keeps the connection string, so it silently uses the main
 * database as the shadow database, and it drops the shadow database before closing its pool.
 */
async function connectToShadowDatabase({ url, shadowDatabaseUrl }) {
  if (shadowDatabaseUrl) return connectToConfiguredShadowDatabase(url, shadowDatabaseUrl);
  const name = `prisma_migrate_shadow_db_${randomUUID()}`;
  await withClient(url, (client) => client.query(`CREATE DATABASE ${quoteIdent(name)}`));
  liveShadowDatabases.add(name);
  const adapter = await connectAdapter(withDatabase(url, name));
  const closePool = adapter.dispose.bind(adapter);
  adapter.dispose = async () => {
    await closePool();
    await dropShadowDatabase(url, name);
  };
  return adapter;
}

/**
 * A configured shadowDatabaseUrl is reset before each use, as the native engine does: the wasm
 * engine replays the migrations into it and expects it empty.
 */
async function connectToConfiguredShadowDatabase(url, shadowDatabaseUrl) {
  const main = describeUrl(url);
  const shadow = describeUrl(shadowDatabaseUrl);
  if (main.host === shadow.host && main.port === shadow.port && main.database === shadow.database) {
    throw new Error('The shadow database you configured appears to be the same as the main database. Please specify another shadow database.');
  }
  const schema = quoteIdent(shadow.schema ?? 'public');
  await withClient(shadowDatabaseUrl, (client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`));
  return connectAdapter(shadowDatabaseUrl);
}

async function dropShadowDatabase(url, name) {
  await withClient(url, (client) => dropDatabase(client, name));
  liveShadowDatabases.delete(name);
}

async function dropLeftoverShadowDatabases(url) {
  for (const name of liveShadowDatabases) {
    await dropShadowDatabase(url, name).catch((error) => logLine('WARN', { message: `Could not drop shadow database ${name}: ${error.message}` }));
  }
}

// JavaScript errors thrown inside the adapter reach the engine as "External error id#N"; the
// original error stays in the bound factory's registry.
let externalErrors;

function adapterFactory(datasource) {
  const factory = bindMigrationAwareSqlAdapterFactory({
    provider: 'postgres',
    adapterName: '@prisma/adapter-pg',
    connect: () => connectAdapter(requireUrl(datasource.url)),
    connectToShadowDb: () => connectToShadowDatabase({ ...datasource, url: requireUrl(datasource.url) }),
  });
  externalErrors = factory.errorRegistry;
  return factory;
}

function originalError(error) {
  const id = /External error id#(\d+)/.exec(String(error?.message))?.[1];
  return (id !== undefined && externalErrors?.consumeError(Number(id))?.error) || error;
}

// ---------------------------------------------------------------------------------------------
// Errors: PostgreSQL / socket errors to Prisma's P1xxx codes, as the native engine reports them

function toKnownError(error, url) {
  if (typeof error?.code === 'string' && /^P\d{4}$/.test(error.code)) return { code: error.code, message: error.message };
  const where = url ? describeUrl(url) : undefined;
  const at = where ? `\`${where.host}:${where.port}\`` : 'the configured address';
  switch (error?.code) {
    case '3D000':
      return { code: 'P1003', message: `Database \`${where?.database}\` does not exist on the database server at ${at}.` };
    case '42P04':
      return { code: 'P1009', message: `Database \`${where?.database}\` already exists on the database server at ${at}` };
    case '28P01':
    case '28000':
      return {
        code: 'P1000',
        message: `Authentication failed against database server, the provided database credentials for \`${where?.user}\` are not valid.\n\nPlease make sure to provide valid database credentials for the database server at ${at}.`,
      };
    case '42501':
      return { code: 'P1010', message: `User \`${where?.user}\` was denied access on the database \`${where?.database}\`` };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
      return { code: 'P1001', message: `Can't reach database server at ${at}\n\nPlease make sure your database server is running at ${at}.` };
    case 'ETIMEDOUT':
      return { code: 'P1002', message: `The database server at ${at} was reached but timed out.` };
    default:
      return { code: undefined, message: String(error?.message ?? error) };
  }
}

// ---------------------------------------------------------------------------------------------
// One-shot commands: `--datasource <json> cli <command>`

const CLI_COMMANDS = {
  'can-connect-to-database': (url) => withClient(url, (client) => client.query('SELECT 1')),
  'create-database': async (url) => {
    const { database } = describeUrl(url);
    await withMaintenanceClient(url, (client) => client.query(`CREATE DATABASE ${quoteIdent(database)}`));
    process.stdout.write(`Database '${database}' was successfully created.\n`);
  },
  'drop-database': async (url) => {
    const { database } = describeUrl(url);
    await withMaintenanceClient(url, (client) => dropDatabase(client, database));
    process.stdout.write(`The database was successfully dropped.\n`);
  },
};

async function runCliCommand(command, datasource) {
  // The CLI drops the first stderr line and parses every other one as JSON.
  logLine('INFO', { message: `Starting schema engine CLI: ${command}` });
  const run = CLI_COMMANDS[command];
  if (!run) throw new Error(`Unknown cli command \`${command}\`. Expected one of: ${Object.keys(CLI_COMMANDS).join(', ')}.`);
  const url = requireUrl(datasource.url);
  try {
    await run(url);
  } catch (error) {
    const known = toKnownError(error, url);
    logLine('ERROR', { is_panic: false, error_code: known.code ?? '', message: known.message }, 'schema_engine::logger');
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The WebAssembly engine

let wasmLoaded;
let panicMessage;

async function loadWasm() {
  wasmLoaded ??= (async () => {
    globalThis.PRISMA_WASM_PANIC_REGISTRY = { set_message: (message) => (panicMessage = message) };
    const gluePath = createRequire(import.meta.url).resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const wasmPath = path.join(path.dirname(gluePath), 'schema_engine_bg.wasm');
    let instance;
    try {
      ({ instance } = await WebAssembly.instantiate(await readFile(wasmPath), { './schema_engine_bg.js': glue }));
    } catch (error) {
      throw new Error(`Could not load the schema engine from ${wasmPath} (does it match its JavaScript glue?): ${error.message}`);
    }
    glue.__wbg_set_wasm(instance.exports);
    instance.exports.__wbindgen_start();
  })();
  return wasmLoaded;
}

async function readDatamodels(paths) {
  return Promise.all(paths.map(async (file) => [file, await readFile(file, 'utf8')]));
}

/** The engine's logs are already JSON lines in the native format: pass them to stderr. */
function forwardEngineLog(line) {
  process.stderr.write(String(line).endsWith('\n') ? String(line) : `${line}\n`);
}

async function startEngine(options) {
  await loadWasm();
  // An empty list (migrate diff sends none) makes the engine panic; "none" must be undefined.
  const datamodels = options.datamodelPaths.length > 0 ? await readDatamodels(options.datamodelPaths) : undefined;
  return glue.SchemaEngine.new({ datamodels }, forwardEngineLog, adapterFactory(options.datasource));
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC session

function send(message) {
  process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
}

/** The wasm error messages end with a span trace ("   0: crate::module …"): not for users. */
function withoutSpanTrace(message) {
  const trace = message.search(/\n\s+0: [\w:]+/);
  return trace === -1 ? message : message.slice(0, trace);
}

function engineMethods() {
  const notRpc = new Set(['constructor', 'free']);
  return new Set(Object.getOwnPropertyNames(glue.SchemaEngine.prototype).filter((name) => !notRpc.has(name)));
}

function isPanic(error) {
  return error instanceof WebAssembly.RuntimeError;
}

function rpcError(engineError, url) {
  const error = originalError(engineError);
  if (isPanic(error)) {
    const message = panicMessage ?? error.message;
    return { code: RPC_ERROR_CODE, message, data: { is_panic: true, message, backtrace: error.stack ?? null } };
  }
  const known = toKnownError(error, url);
  return {
    code: RPC_ERROR_CODE,
    message: 'An error happened. Check the data field for details.',
    data: { is_panic: false, message: withoutSpanTrace(known.message), error_code: known.code ?? null, meta: error?.meta ?? null },
  };
}

function createSession(options) {
  let enginePromise;
  let nextPrintId = 1;
  const pendingPrints = new Map();

  const engine = () => (enginePromise ??= startEngine(options));

  /** Results carrying `stdout` (diff) are printed by the CLI when asked with a `print` request. */
  function print(content) {
    const id = `print-${nextPrintId++}`;
    const answered = new Promise((resolve) => pendingPrints.set(id, resolve));
    send({ id, method: 'print', params: { content } });
    return answered;
  }

  /**
   * The wasm engine's evaluateDataLoss / createMigration read the migrations' schema from a cache
   * that only diagnoseMigrationHistory (with a shadow database) fills.
   */
  async function primeMigrationCache(schemaEngine, params) {
    await schemaEngine.diagnoseMigrationHistory({
      migrationsList: params.migrationsList,
      optInToShadowDatabase: true,
      filters: params.filters ?? { externalTables: [], externalEnums: [] },
    });
  }

  async function callEngine(method, params) {
    if (method === 'createDatabase') return createDatabaseRpc(params);
    const schemaEngine = await engine();
    const name = method === 'getDatabaseVersion' ? 'version' : method;
    if (!engineMethods().has(name)) throw Object.assign(new Error(`Method not found: ${method}`), { rpcCode: -32601 });
    try {
      return await schemaEngine[name](params ?? null);
    } catch (error) {
      if (!params?.migrationsList || !String(error?.message).includes(SHADOW_DB_REQUIRED)) throw error;
      logLine('INFO', { message: `${method}: filling the migrations cache with diagnoseMigrationHistory` });
      await primeMigrationCache(schemaEngine, params);
      return schemaEngine[name](params);
    }
  }

  async function createDatabaseRpc(params) {
    const url = requireUrl(params?.datasource?.url ?? options.datasource.url);
    const { database } = describeUrl(url);
    await withMaintenanceClient(url, (client) => client.query(`CREATE DATABASE ${quoteIdent(database)}`));
    return { databaseName: database };
  }

  let inFlight = null;

  async function handleRequest({ id, method, params }) {
    inFlight = id;
    try {
      const result = (await callEngine(method, params)) ?? {};
      if (typeof result.stdout === 'string') {
        await print(result.stdout);
        result.stdout = null;
      }
      send({ id, result });
    } catch (error) {
      if (error?.rpcCode) send({ id, error: { code: error.rpcCode, message: error.message } });
      else send({ id, error: rpcError(error, options.datasource.url) });
      if (isPanic(error)) await shutdown(101); // no engine call is safe after a wasm panic
    } finally {
      inFlight = null;
    }
  }

  /**
   * A panic inside one of the engine's background tasks surfaces as an uncaught exception. Answer
   * the pending request with it: when the engine just dies, `prisma migrate diff` exits 0 silently.
   */
  function crash(error) {
    if (inFlight !== null) send({ id: inFlight, error: rpcError(error, options.datasource.url) });
    logLine('ERROR', { is_panic: isPanic(error), message: isPanic(error) ? panicMessage ?? error.message : String(error?.stack ?? error) }, 'schema_engine::logger');
    return shutdown(isPanic(error) ? 101 : 1);
  }

  let queue = Promise.resolve();

  function onLine(line) {
    if (!line.trim()) return;
    let message;
    try {
      message = JSON.parse(line);
    } catch (error) {
      send({ id: null, error: { code: -32700, message: `Parse error: ${error.message}` } });
      return;
    }
    if (message.method === undefined) {
      pendingPrints.get(message.id)?.();
      pendingPrints.delete(message.id);
      return;
    }
    queue = queue.then(() => handleRequest(message));
  }

  let shuttingDown = false;

  async function shutdown(exitCode) {
    if (shuttingDown) return;
    shuttingDown = true;
    if (options.datasource.url) await dropLeftoverShadowDatabases(options.datasource.url);
    process.exit(exitCode);
  }

  return { onLine, drain: () => queue, shutdown, crash };
}

function serveRpc(options) {
  if (options.previewFeatures) {
    logLine('WARN', { message: `Ignoring preview features ${options.previewFeatures}: the WebAssembly engine is built without them.` });
  }
  const session = createSession(options);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', session.onLine);
  // The CLI ends our stdin when done, and sends SIGTERM right after.
  lines.on('close', () => session.drain().then(() => session.shutdown(0)));
  process.on('uncaughtException', session.crash);
  process.on('unhandledRejection', session.crash);
  process.on('SIGTERM', () => session.shutdown(0));
  process.on('SIGINT', () => session.shutdown(130));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseCommandLine(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (options.unexpected.length > 0) throw new Error(`Unexpected arguments: ${options.unexpected.join(' ')}\n${USAGE}`);
  if (options.version) {
    await loadWasm();
    process.stdout.write(`schema-engine-cli ${glue.version()}\n`);
    return;
  }
  if (options.cliCommand !== undefined) {
    process.exitCode = await runCliCommand(options.cliCommand, options.datasource);
    return;
  }
  serveRpc(options);
}

main().catch((error) => {
  logError(error);
  process.exit(1);
});
