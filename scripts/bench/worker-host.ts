// The parent's side of a bench worker process (worker-process.ts).
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { DrainShape, Mode } from './throughput.ts';

export type Order = { go: { queue: string; mode: Mode; shape: DrainShape } } | 'stop' | 'exit';
export type Reply = 'ready' | { cpuMicros: number } | { warning: string } | { failed: string };

const script = path.join(import.meta.dirname, 'worker-process.ts');

export interface BenchWorker {
  /** Start draining `queue`; the process's CPU is counted from here. */
  go(order: { queue: string; mode: Mode; shape: DrainShape }): void;
  /** Stop working the current queue; resolves to the CPU microseconds used since go(). */
  stop(): Promise<number>;
  /** Throws if the process failed or exited. */
  check(): void;
  close(): Promise<void>;
}

export async function spawnWorker(url: string, onWarning: (message: string) => void): Promise<BenchWorker> {
  const child = fork(script, [url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let failure: Error | undefined;
  let waiting: { resolve: (micros: number) => void; reject: (error: Error) => void } | undefined;
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench worker process exited with ${code} before it was ready`)));
    child.once('message', (message) => (message === 'ready' ? resolve() : reject(new Error(`bench worker process: ${JSON.stringify(message)}`))));
  });
  child.removeAllListeners('exit');
  child.on('exit', (code) => {
    failure ??= new Error(`bench worker process exited with ${code}`);
    waiting?.reject(failure);
  });
  child.on('message', (reply: Reply) => {
    if (reply === 'ready') return;
    if ('warning' in reply) onWarning(reply.warning);
    else if ('failed' in reply) {
      failure = new Error(`bench worker process: ${reply.failed}`);
      waiting?.reject(failure);
    } else waiting?.resolve(reply.cpuMicros);
  });
  return {
    go(order) {
      if (failure) throw failure;
      child.send({ go: order } satisfies Order);
    },
    check() {
      if (failure) throw failure;
    },
    stop() {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        child.send('stop' satisfies Order);
      });
    },
    close() {
      return new Promise((resolve) => {
        child.removeAllListeners('exit');
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send('exit' satisfies Order);
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      });
    },
  };
}
