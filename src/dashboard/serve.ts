// Serving a Fetch API handler with node:http.
//
//   serve({ handler, host = '127.0.0.1', port }): Promise<ServedDashboard>
//     handler  (request: Request) => Promise<Response>, e.g. createDashboard({ joblog, token })
//     host     interface to listen on; default 127.0.0.1 (this machine only)
//     port     0 picks a free port; the chosen one is in the result's `url`
//   resolves once listening to { url: 'http://127.0.0.1:4000/', server, close(): Promise<void> }
//
// `nodeListener(handler)` is the same adapter as a `(req, res)` listener, for an existing
// node:http server or Express (`app.use('/admin/jobs', nodeListener(dashboard))`). The Request's
// signal aborts when the client closes the connection before the response is sent.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { parseOptions } from '../options.ts';

export type FetchHandler = (request: Request) => Promise<Response>;

export interface ServeOptions {
  handler: FetchHandler;
  /** Default `127.0.0.1`: reachable from this machine only. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
}

export interface ServedDashboard {
  /** Where it listens, e.g. `http://127.0.0.1:4000/`. */
  url: string;
  server: http.Server;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

const serveOptionsSchema = z.strictObject({
  handler: z.custom<FetchHandler>((v) => typeof v === 'function', { message: 'expected a function (request) => Promise<Response>' }),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.int().min(0).max(65535, 'expected a port from 0 to 65535'),
});

/** Serve a Fetch handler on node:http. Resolves once listening. */
export async function serve(options: ServeOptions): Promise<ServedDashboard> {
  const { handler, host, port } = parseOptions(serveOptionsSchema, options, 'serve');
  const server = http.createServer(nodeListener(handler));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

type NodeRequest = http.IncomingMessage & { originalUrl?: string };

/**
 * A node:http listener that hands each request to `handler`: the method, the path with its
 * query, the headers, and the body of a POST (an action's form: at most 16 KiB, else a 413).
 * Under Express, `originalUrl` (the path before the mount point was stripped) is used.
 */
export function nodeListener(handler: FetchHandler): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    void handle(handler, req as NodeRequest, res);
  };
}

async function handle(handler: FetchHandler, req: NodeRequest, res: http.ServerResponse): Promise<void> {
  if (FORBIDDEN_METHODS.has(req.method ?? '')) {
    // The Fetch API cannot even represent these; the dashboard would refuse them anyway.
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('method not allowed\n');
    return;
  }
  // The request's signal aborts when the client goes away before its response is sent: the
  // dashboard then cancels the statement it runs for it, or never starts one.
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  let requestBody: Buffer | undefined;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    requestBody = await readBody(req);
    if (!requestBody) {
      res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end('request body too large\n');
      return;
    }
  }
  try {
    const response = await handler(toRequest(req, gone.signal, requestBody));
    const headers: Record<string, string | string[]> = {};
    response.headers.forEach((value, key) => {
      if (key !== 'set-cookie') headers[key] = value;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length) headers['set-cookie'] = cookies;
    const body = response.body ? Buffer.from(await response.arrayBuffer()) : null;
    res.writeHead(response.status, headers);
    res.end(req.method === 'HEAD' ? undefined : body ?? undefined);
  } catch (error) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('internal error\n');
    console.error('joblog dashboard:', error);
  }
}

const MAX_BODY_BYTES = 16 * 1024;

/** The body, or undefined when it is larger than `MAX_BODY_BYTES` (or the client went away). */
async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return undefined;
      chunks.push(chunk);
    }
  } catch {
    return undefined;
  }
  return Buffer.concat(chunks);
}

function toRequest(req: NodeRequest, signal: AbortSignal, body: Buffer | undefined): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  // Only the path and query are taken from the request line; the Host header does not choose
  // where links or redirects point (they are all paths).
  // A path such as `//other.host/` stays a path.
  const path = req.originalUrl ?? req.url ?? '/';
  const url = new URL(`${encrypted ? 'https' : 'http'}://localhost${path.startsWith('/') ? path : `/${path}`}`);
  return new Request(url, { method: req.method ?? 'GET', headers, signal, ...(body && body.length > 0 ? { body } : {}) });
}
