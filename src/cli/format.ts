// Output of the CLI: aligned tables for people, JSON for programs.

export interface OutputStyle {
  /** Dates in UTC (`…Z`) instead of local time. */
  utc: boolean;
  /** Terminal width to fit tables into; undefined when not a terminal. */
  columns?: number;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** `2026-11-30 14:05:09` in local time, or `2026-11-30 13:05:09Z` with `utc`. */
export function formatDate(date: Date | null | undefined, style: OutputStyle): string {
  if (!date) return '-';
  if (style.utc) return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/** `850ms`, `12.3s`, `4m 05s`, `2h 10m`, `3d 4h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms == null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad2(Math.floor(s % 60))}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${pad2(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatRate(rate: number | null): string {
  return rate == null ? '-' : `${(rate * 100).toFixed(1)}%`;
}

/** JSON with bigints as strings and dates as ISO strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Right-align (numbers). */
  right?: boolean;
  /** This column gives up width first when the table is too wide for the terminal. */
  shrink?: boolean;
}

const MIN_SHRUNK = 12;

/** An aligned table, one line per row, fitted to the terminal width when there is one. */
export function table<T>(rows: T[], columns: Column<T>[], style: OutputStyle): string {
  const cells = rows.map((row) => columns.map((c) => visible(oneLine(c.value(row)))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  if (style.columns) fit(widths, columns, style.columns);
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const text = v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v;
        return columns[i]!.right ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

function fit(widths: number[], columns: { shrink?: boolean }[], total: number): void {
  const used = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  for (let i = 0; i < columns.length && used() > total; i++) {
    if (!columns[i]!.shrink) continue;
    widths[i] = Math.max(MIN_SHRUNK, widths[i]! - (used() - total));
  }
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ⏎ ');

const NAMED_CONTROLS: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * Stored text as it may reach a terminal: every C0 control, DEL and C1 control as a visible
 * escape (`\x1b`, `\r`, `\x9b`), so an ESC, CR, BEL or OSC in a user id or an error message
 * cannot move the cursor, retitle the window or forge a link. Every cell and value a table or
 * `show` prints goes through it; JSON output is escaped by JSON itself.
 */
export function visible(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => NAMED_CONTROLS[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
