// The overview's chart, drawn here as plain SVG: one bar per time bucket for all jobs, with
// the failed ones (failed + dead) drawn over it. Hovering a bar shows its <title>; no script.
import { formatCount, formatTick, formatTime } from './format.ts';
import { html, type Html } from './html.ts';

export interface ChartBucket {
  at: Date;
  total: number;
  failed: number;
}

const WIDTH = 1120;
const HEIGHT = 240;
const M = { top: 12, right: 10, bottom: 26, left: 48 };
const PLOT_W = WIDTH - M.left - M.right;
const PLOT_H = HEIGHT - M.top - M.bottom;
const Y_TICKS = 4;

/** The smallest 1, 2 or 5 × 10ⁿ step such that `Y_TICKS` steps reach `max`. */
export function niceStep(max: number): number {
  const raw = Math.max(1, max / Y_TICKS);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) {
    if (m * power >= raw) return Math.max(1, m * power);
  }
  return 10 * power;
}

const round = (n: number): string => (Math.round(n * 10) / 10).toString();

/** Bars of jobs and failures per bucket, with a y axis of counts and a few time labels. */
export function jobsChart(buckets: ChartBucket[], bucketMs: number): Html {
  const label = `Jobs and failures per ${describeBucket(bucketMs)}`;
  if (buckets.length === 0) {
    return html`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${label}"><text x="${WIDTH / 2}" y="${HEIGHT / 2}" class="empty" text-anchor="middle">no buckets</text></svg>`;
  }
  const max = Math.max(...buckets.map((b) => b.total));
  const step = niceStep(max);
  const top = step * Y_TICKS;
  const y = (v: number) => M.top + PLOT_H - (v / top) * PLOT_H;
  const slot = PLOT_W / buckets.length;
  const barW = Math.max(1, slot * 0.8);
  const spanMs = buckets.length * bucketMs;

  const grid = Array.from({ length: Y_TICKS + 1 }, (_, i) => {
    const v = i * step;
    return html`<line class="grid" x1="${M.left}" x2="${WIDTH - M.right}" y1="${round(y(v))}" y2="${round(y(v))}"/><text class="axis" x="${M.left - 6}" y="${round(y(v) + 4)}" text-anchor="end">${formatCount(v)}</text>`;
  });
  const bars = buckets.map((b, i) => {
    const x = round(M.left + i * slot + (slot - barW) / 2);
    const title = `${formatTime(b.at)} UTC: ${formatCount(b.total)} jobs, ${formatCount(b.failed)} failed`;
    return html`<g class="bucket"><title>${title}</title>${
      b.total > 0 && html`<rect class="total" x="${x}" y="${round(y(b.total))}" width="${round(barW)}" height="${round(PLOT_H - (y(b.total) - M.top))}"/>`
    }${
      b.failed > 0 && html`<rect class="failed" x="${x}" y="${round(y(b.failed))}" width="${round(barW)}" height="${round(PLOT_H - (y(b.failed) - M.top))}"/>`
    }</g>`;
  });
  const tickCount = Math.min(5, buckets.length);
  const ticks = Array.from({ length: tickCount }, (_, k) => {
    const i = tickCount === 1 ? 0 : Math.round((k * (buckets.length - 1)) / (tickCount - 1));
    const x = round(M.left + i * slot + slot / 2);
    // The outer labels lean inwards so that they stay inside the picture.
    const anchor = tickCount > 1 && k === 0 ? 'start' : tickCount > 1 && k === tickCount - 1 ? 'end' : 'middle';
    const at = anchor === 'start' ? round(M.left + i * slot) : anchor === 'end' ? round(M.left + (i + 1) * slot) : x;
    return html`<text class="axis" x="${at}" y="${HEIGHT - 8}" text-anchor="${anchor}">${formatTick(buckets[i]!.at, spanMs)}</text>`;
  });
  return html`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${label}">
<title>${label}</title>
${grid}
${bars}
${ticks}
${max === 0 && html`<text class="empty" x="${M.left + PLOT_W / 2}" y="${M.top + PLOT_H / 2}" text-anchor="middle">no jobs in this window</text>`}
</svg>`;
}

export function describeBucket(ms: number): string {
  const units: [number, string][] = [[86400_000, 'day'], [3600_000, 'hour'], [60_000, 'minute']];
  for (const [size, name] of units) {
    if (ms % size === 0) {
      const n = ms / size;
      return n === 1 ? name : `${n} ${name}s`;
    }
  }
  return `${ms / 1000} seconds`;
}

export interface TypeBar {
  /** The job type. */
  label: string;
  /** null: nothing to draw (no settled run in the window). */
  value: number | null;
  /** The value as the page writes it, e.g. `12 %`, `2.9 s`. */
  text: string;
  /** The hover text. */
  title: string;
}

const BAR_ROW = 22;
const BAR_LABEL_W = 200;
const BAR_TEXT_W = 80;

/**
 * One horizontal bar per job type, longest = `max` (default the largest value): the failure
 * rates or the p95 durations of the window, side by side.
 */
export function typeBarsChart(id: string, label: string, bars: TypeBar[], kind: 'rate' | 'duration', max?: number): Html {
  const height = Math.max(1, bars.length) * BAR_ROW + 8;
  const top = max ?? Math.max(0, ...bars.map((b) => b.value ?? 0));
  const plotW = WIDTH - BAR_LABEL_W - BAR_TEXT_W;
  if (bars.length === 0) {
    return html`<svg id="${id}" class="chart bars" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${label}"><text x="${WIDTH / 2}" y="18" class="empty" text-anchor="middle">no jobs in this window</text></svg>`;
  }
  const rows = bars.map((b, i) => {
    const y = 4 + i * BAR_ROW;
    const w = b.value === null || top === 0 ? 0 : Math.max(b.value > 0 ? 1 : 0, (b.value / top) * plotW);
    return html`<g class="bar" data-type="${b.label}"><title>${b.title}</title><text class="axis" x="${BAR_LABEL_W - 8}" y="${y + 15}" text-anchor="end">${b.label}</text>${
      w > 0 && html`<rect class="${kind}" x="${BAR_LABEL_W}" y="${y + 3}" width="${round(w)}" height="${BAR_ROW - 6}"/>`
    }<text class="axis value" x="${round(BAR_LABEL_W + w + 6)}" y="${y + 15}">${b.value === null ? '—' : b.text}</text></g>`;
  });
  return html`<svg id="${id}" class="chart bars" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${label}">
<title>${label}</title>
${rows}
</svg>`;
}
