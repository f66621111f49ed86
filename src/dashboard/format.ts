// How values read on the page. Times are shown in UTC everywhere (the server renders the page,
// and without scripts the browser's time zone is unknown), and say so.

/** `2026-11-30 04:24:48` (UTC). */
export function formatTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** `04:24` for a chart label within a day, `11-30 04:24` otherwise. */
export function formatTick(date: Date, spanMs: number): string {
  const iso = date.toISOString();
  if (spanMs <= 36 * 3600_000) return iso.slice(11, 16);
  if (spanMs <= 8 * 86400_000) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return iso.slice(5, 10);
}

/** The value of a `datetime-local` input (UTC, no zone): `2026-11-30T04:24:48`. */
export function toLocalInput(date: Date): string {
  return date.toISOString().slice(0, 19);
}

/** `412 ms`, `2.9 s`, `3 min 4 s`, `2 h 5 min`, `3 d 4 h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** `12.5 %`; empty for null. */
export function formatRate(rate: number | null): string {
  if (rate === null) return '';
  const pct = rate * 100;
  return `${pct < 10 && pct > 0 ? pct.toFixed(1) : Math.round(pct)} %`;
}

/** `1,234,567` */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** First 8 characters of a uuid: what the demo and the CLI show. */
export function shortId(jid: string): string {
  return jid.slice(0, 8);
}
