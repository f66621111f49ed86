/**
 * The (user, group) sections whose claims found them held lately. A claim of such a section asks
 * the claiming statement itself who holds it (one round trip when it is still held); any other
 * claim sends the plain insert, which costs less to plan (see sql.ClaimStatement), and asks why
 * only when it wrote no row. Bounded: past `max` sections it forgets them all, which costs the
 * next busy claim of each one statement more, nothing else.
 */
export class ContendedSections {
  readonly #seen = new Map<string, number>();
  readonly #forMs: number;
  readonly #max: number;

  constructor(options: { forMs: number; max: number }) {
    this.#forMs = options.forMs;
    this.#max = options.max;
  }

  /** A claim of this section found it held. */
  mark(section: { userId: string | null; group: string | null }): void {
    const key = keyOf(section);
    if (key === null) return;
    if (this.#seen.size >= this.#max && !this.#seen.has(key)) this.#seen.clear();
    this.#seen.set(key, performance.now());
  }

  /** Was this section found held within the last `forMs`? */
  has(section: { userId: string | null; group: string | null }): boolean {
    const key = keyOf(section);
    const at = key === null ? undefined : this.#seen.get(key);
    if (at === undefined) return false;
    if (performance.now() - at <= this.#forMs) return true;
    this.#seen.delete(key!);
    return false;
  }
}

/** A job without a user or a group takes no section. */
function keyOf({ userId, group }: { userId: string | null; group: string | null }): string | null {
  return userId === null || group === null ? null : `${userId}\u0000${group}`;
}
