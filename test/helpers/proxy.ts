// A TCP proxy to PostgreSQL that can cut every connection through it and refuse new ones: the
// library's connection fails while pg-boss's (direct) one goes on.
import net from 'node:net';

export async function cuttableProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  const cut = () => {
    refusing = true;
    for (const s of sockets) s.destroy();
  };
  return {
    url: url.toString(),
    cut,
    restore() { refusing = false; },
    /** Cut, and refuse new connections for `ms` (a restart's worth). */
    cutFor(ms: number) {
      cut();
      setTimeout(() => (refusing = false), ms);
    },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
