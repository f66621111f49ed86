// One line that says what went wrong, from whatever Prisma, its pg adapter or Node threw.
import { JobLogError } from '../errors.ts';

// Driver adapter error kinds (adapter-pg) and Node socket codes that mean "no usable connection".
const CONNECTION_KINDS = new Set([
  'DatabaseNotReachable', 'DatabaseDoesNotExist', 'DatabaseAccessDenied', 'AuthenticationFailed',
  'TlsConnectionError', 'SocketTimeout', 'ConnectionClosed', 'TooManyConnections',
]);
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', '28P01', '28000', '3D000']);

interface ErrorLike {
  message?: string;
  code?: string;
  kind?: string;
  originalMessage?: string;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
}

/** A one-line description; connection failures say so. */
export function describeError(error: unknown): string {
  if (error instanceof JobLogError) return error.message.replace(/\s*\n\s*-?\s*/g, ' ');
  const chain = causes(error);
  const connection = chain.some((e) => CONNECTION_KINDS.has(e.kind ?? '') || CONNECTION_CODES.has(e.code ?? ''));
  const line = detail(chain) ?? String(error);
  return connection ? `cannot connect to the database: ${line}` : `database error: ${line}`;
}

function causes(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (let e = error as ErrorLike | undefined, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    out.push(e);
    e = (e.meta?.driverAdapterError ?? e.cause) as ErrorLike | undefined;
  }
  return out;
}

// Prisma wraps the server's words: "Invalid `prisma.$queryRawUnsafe()` invocation: … Message: `…`".
function detail(chain: ErrorLike[]): string | undefined {
  for (const e of chain) {
    if (e.originalMessage) return e.originalMessage;
    const quoted = e.message ? /Message: `([\s\S]*)`\s*$/.exec(e.message)?.[1] : undefined;
    if (quoted) return quoted.split('\n')[0];
  }
  const first = chain.find((e) => e.message)?.message;
  return first?.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('Invalid `prisma.'));
}
