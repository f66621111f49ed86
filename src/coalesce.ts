/**
 * Gathers the items that callers submit while a statement is in flight and sends them together in
 * the next one, so N concurrent workers cost about one round trip instead of N. An idle coalescer
 * runs a submission at once: it adds no waiting, only sharing.
 *
 * If a combined run fails, each caller's items run again through `fallback` (one statement per
 * item), so one bad item (or a deadlock between two combined statements) never fails the others.
 */
export class Coalescer<In, Out> {
  readonly #runMany: (items: In[]) => Promise<Out[]>;
  readonly #fallback: (items: In[]) => Promise<Out[]>;
  readonly #maxItems: number;
  #pending: Submission<In, Out>[] = [];
  #running = false;

  constructor(options: { runMany: (items: In[]) => Promise<Out[]>; fallback: (items: In[]) => Promise<Out[]>; maxItems: number }) {
    this.#runMany = options.runMany;
    this.#fallback = options.fallback;
    this.#maxItems = options.maxItems;
  }

  /** Resolves to one output per item, in order. */
  submit(items: In[]): Promise<Out[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<Out[]>((resolve, reject) => {
      this.#pending.push({ items, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#pending.length > 0) await this.#runOnce(this.#take());
    } finally {
      this.#running = false;
    }
  }

  /** Whole submissions, up to maxItems items (at least one submission). */
  #take(): Submission<In, Out>[] {
    let count = 0;
    let n = 0;
    while (n < this.#pending.length && (n === 0 || count + this.#pending[n]!.items.length <= this.#maxItems)) {
      count += this.#pending[n]!.items.length;
      n++;
    }
    return this.#pending.splice(0, n);
  }

  async #runOnce(group: Submission<In, Out>[]): Promise<void> {
    let outputs: Out[];
    try {
      outputs = await this.#runMany(group.flatMap((s) => s.items));
    } catch (error) {
      if (group.length === 1 && group[0]!.items.length === 1) {
        group[0]!.reject(error);
        return;
      }
      await Promise.all(group.map((s) => this.#fallback(s.items).then(s.resolve, s.reject)));
      return;
    }
    let at = 0;
    for (const s of group) {
      s.resolve(outputs.slice(at, at + s.items.length));
      at += s.items.length;
    }
  }
}

interface Submission<In, Out> {
  items: In[];
  resolve(outputs: Out[]): void;
  reject(error: unknown): void;
}
