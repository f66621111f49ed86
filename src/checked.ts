// The shape every edge check returns, and its zod form, so one check serves both the code that
// throws its own typed error (the tracker, the CLI, the dashboard) and the option schemas.
import { z } from 'zod';

/**
 * A value that passed a check, or the reason it did not (a phrase naming no value).
 * `unreadable`: the value is not of any form the check reads (rather than a form it reads with
 * a value out of bounds), so a caller may list the forms in its own words.
 */
export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string; unreadable?: boolean };

export const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
export const problem = <T = never>(text: string): Checked<T> => ({ ok: false, problem: text });
export const unreadable = <T = never>(text: string): Checked<T> => ({ ok: false, problem: text, unreadable: true });

/** A zod schema that runs `check` and outputs its value. */
export function checkedSchema<T>(check: (value: unknown) => Checked<T>) {
  return z.unknown().transform((value, ctx): T => {
    const result = check(value);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.problem });
    return z.NEVER;
  });
}
