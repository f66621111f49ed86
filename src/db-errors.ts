// What kind of database failure an error is, whoever raised it: `pg` (a SQLSTATE in `code`),
// Prisma 7's driver adapters (`meta.driverAdapterError.cause`), Prisma 5's raw queries
// (`meta.code`), or Prisma's own connection errors (P1xxx). The tracker decides from this whether
// a failed write is worth repeating (the connection) or will fail the same way again (the value).

type Loose = { code?: unknown; meta?: { code?: unknown; driverAdapterError?: { cause?: { originalCode?: unknown; kind?: unknown } } }; cause?: unknown };

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Driver-adapter kinds of a connection that went away or never came. */
const CONNECTION_KINDS = new Set(['ConnectionClosed', 'DatabaseNotReachable', 'SocketTimeout', 'TooManyConnections']);
/** Prisma's codes for the same: can't reach, timed out, closed, pool timeout. */
const PRISMA_CONNECTION_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** What `pg` says, with no code, when its socket closed under it or a pool could not connect. */
const PG_CONNECTION_MESSAGE = /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Connection ended)/;
/** Node's socket errors, as `pg` passes them on. */
const SOCKET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

/** The errors along `cause`, the error itself first (bounded: causes can loop). */
function* chain(error: unknown): Generator<Loose> {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    yield e as Loose;
    e = safeGet(e, 'cause');
  }
}

function safeGet(o: object, key: string): unknown {
  try {
    return (o as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** The PostgreSQL SQLSTATE behind an error, when one can be found. */
export function sqlStateOf(error: unknown): string | null {
  for (const e of chain(error)) {
    const candidates = [e.meta?.driverAdapterError?.cause?.originalCode, e.meta?.code, e.code];
    for (const c of candidates) if (typeof c === 'string' && SQLSTATE.test(c) && !c.startsWith('P')) return c;
  }
  return null;
}

/**
 * The database connection failed (closed, refused, restarting, timed out): the same statement may
 * well succeed on a new connection. Serialization failures and deadlocks count too.
 */
export function isConnectionError(error: unknown): boolean {
  const state = sqlStateOf(error);
  if (state && (state.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '40001', '40P01'].includes(state))) return true;
  for (const e of chain(error)) {
    const kind = e.meta?.driverAdapterError?.cause?.kind;
    if (typeof kind === 'string' && CONNECTION_KINDS.has(kind)) return true;
    if (typeof e.code === 'string' && (PRISMA_CONNECTION_CODES.has(e.code) || SOCKET_CODES.has(e.code))) return true;
    const message = safeGet(e, 'message');
    if (typeof message === 'string' && PG_CONNECTION_MESSAGE.test(message)) return true;
  }
  return false;
}

/**
 * The statement was refused for the values it carried (a data exception, a foreign key, a check,
 * an index row too large): writing the same values again fails the same way.
 */
export function isValueError(error: unknown): boolean {
  const state = sqlStateOf(error);
  if (state) return state.startsWith('22') || ['23502', '23503', '23514', '54000'].includes(state);
  for (const e of chain(error)) if (e.code === 'P2003' || e.code === 'P2000') return true;
  return false;
}
