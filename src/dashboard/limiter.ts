// How many requests read the database at once. The dashboard shares the app's connection pool:
// without a bound, a burst of heavy pages takes every connection and the app's own queries wait.

interface Waiter {
  grant(): void;
}

/** A counting semaphore whose waiters give up after `waitMs`, or when their request goes away. */
export class Limiter {
  readonly #max: number;
  readonly #waitMs: number;
  #active = 0;
  readonly #queue: Waiter[] = [];

  constructor(max: number, waitMs: number) {
    this.#max = max;
    this.#waitMs = waitMs;
  }

  /** A function that gives the turn back, or null: no turn within `waitMs`, or `signal` aborted. */
  acquire(signal: AbortSignal): Promise<(() => void) | null> {
    if (signal.aborted) return Promise.resolve(null);
    if (this.#active < this.#max) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve) => {
      const leave = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', leave);
        const at = this.#queue.indexOf(waiter);
        if (at >= 0) this.#queue.splice(at, 1);
        resolve(null);
      };
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', leave);
          resolve(this.#releaser());
        },
      };
      const timer = setTimeout(leave, this.#waitMs);
      signal.addEventListener('abort', leave, { once: true });
      this.#queue.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next) next.grant(); // the turn passes on: #active stays the same
      else this.#active--;
    };
  }
}
