// PostgreSQL's CPU time, read from /proc: what the database spent on a measurement, next to the
// worker process's own process.cpuUsage(). Far steadier than rates on a shared machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import type pg from 'pg';

/** Where the figure comes from: every process of a server of our own, or only our backends. */
export type ServerCpuScope = 'server' | 'backends';

export interface ServerCpu {
  scope: ServerCpuScope;
  /** CPU microseconds so far: compare two readings. The probe's own backend is never counted. */
  read(): Promise<number>;
}

const TICK_MICROS = 1e6 / clockTicksPerSecond();

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(ticks) && ticks > 0) return ticks;
  } catch {
    // getconf missing: Linux's USER_HZ is 100 everywhere it runs
  }
  return 100;
}

interface ProcStat {
  ppid: number;
  /** utime + stime, in ticks */
  own: number;
  /** cutime + cstime: children that exited and were waited for, in ticks */
  children: number;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function parseStat(text: string): ProcStat {
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

async function stat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseStat(await fs.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // the process exited
  }
}

async function allProcesses(): Promise<Map<number, ProcStat>> {
  const pids = (await fs.readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const stats = await Promise.all(pids.map(async (pid) => [pid, await stat(pid)] as const));
  return new Map(stats.filter((s): s is readonly [number, ProcStat] => s[1] !== undefined));
}

/**
 * `probe` is the bench's own connection (it polls for drained queues): its backend is left out.
 * On a server started for the run, the postmaster and all its children (backends, WAL writer,
 * checkpointer, autovacuum) are counted, with the children that exited (the postmaster's
 * cutime/cstime). On a shared server only the backends connected to the bench database count:
 * other users' work stays out, and so do the server's background processes.
 */
export async function serverCpu(probe: pg.Client, ownServer: boolean): Promise<ServerCpu> {
  const { rows: [me] } = await probe.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const probePid = me!.pid;
  if (ownServer) {
    const postmaster = (await stat(probePid))?.ppid;
    if (!postmaster) throw new Error(`cannot read /proc/${probePid}/stat of the bench's own backend`);
    return {
      scope: 'server',
      async read() {
        const procs = await allProcesses();
        const root = procs.get(postmaster);
        if (!root) throw new Error(`the bench's PostgreSQL (postmaster ${postmaster}) is gone`);
        let ticks = root.own + root.children;
        for (const [pid, p] of procs) if (p.ppid === postmaster && pid !== probePid) ticks += p.own;
        return ticks * TICK_MICROS;
      },
    };
  }
  // Per backend: a backend that ends between two readings takes its time with it, one that
  // starts between them counts from zero. The bench's pools keep their connections open.
  const seen = new Map<number, number>();
  let total = 0;
  return {
    scope: 'backends',
    async read() {
      const { rows } = await probe.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      for (const { pid } of rows) {
        const own = (await stat(pid))?.own;
        if (own === undefined) continue;
        total += own - (seen.get(pid) ?? 0);
        seen.set(pid, own);
      }
      return total * TICK_MICROS;
    },
  };
}
