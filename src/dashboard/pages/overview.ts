import type { HeldSection, JobState, StatsResult } from '../../types.ts';
import { jobsChart } from '../chart.ts';
import { formatCount, formatDuration, formatRate, formatTime, shortId } from '../format.ts';
import { html, type Html } from '../html.ts';
import { href, layout, stateBadge } from '../layout.ts';
import { listQuery, STATES, WINDOWS, type Window } from '../params.ts';

export interface OverviewData {
  base: string;
  window: Window;
  stats: StatsResult;
  /** The sections held now, or why they cannot be shown. */
  sections: HeldSection[] | { unavailable: string };
}

/** Counts by state and type for the window, the chart, and the sections held now. */
export function overviewPage(data: OverviewData): Html {
  const { base, window, stats } = data;
  const since = stats.since;
  const totals = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<JobState, number>;
  for (const t of stats.byType) for (const s of STATES) totals[s] += t.counts[s] ?? 0;
  const all = stats.byType.reduce((n, t) => n + t.total, 0);

  const body = html`
<h1>Overview <span class="muted">· ${formatTime(since)} to ${formatTime(stats.until)} UTC</span></h1>
<nav class="windows" aria-label="window">${WINDOWS.map(
    (w) => html`<a href="${href(base, '/', new URLSearchParams({ window: w.key }))}" aria-current="${w.key === window.key}">${w.key}</a>`,
  )}</nav>
<section aria-labelledby="by-state">
<h2 id="by-state">Jobs by state</h2>
<div class="cards">
<a class="card" href="${href(base, '/jobs', listQuery({ since }))}"><span>all</span><b data-count="all">${formatCount(all)}</b></a>
${STATES.map(
    (s) => html`<a class="card" href="${href(base, '/jobs', listQuery({ since, states: [s] }))}">${stateBadge(s)}<b data-count="${s}">${formatCount(totals[s])}</b></a>`,
  )}
</div>
</section>
<section aria-labelledby="chart" class="panel">
<h2 id="chart">Jobs and failures over time</h2>
${jobsChart(stats.buckets ?? [], window.bucketMs)}
<div class="legend"><span><i class="total"></i>jobs started</span><span><i class="failed"></i>failed or dead</span><span>one bar per ${window.bucket}</span></div>
</section>
<section aria-labelledby="by-type">
<h2 id="by-type">By job type</h2>
${byTypeTable(base, stats)}
</section>
<section aria-labelledby="sections">
<h2 id="sections">Sections held now</h2>
${sectionsTable(base, data.sections)}
</section>`;
  return layout({ base, title: 'Overview', section: 'overview', body });
}

function byTypeTable(base: string, stats: StatsResult): Html {
  if (stats.byType.length === 0) return html`<p class="muted">No jobs started in this window.</p>`;
  const since = stats.since;
  return html`<table id="types">
<thead><tr><th>type</th><th class="num">total</th>${STATES.map((s) => html`<th class="num">${s}</th>`)}<th class="num">failure rate</th><th class="num">p50</th><th class="num">p95</th><th class="num">max</th></tr></thead>
<tbody>${stats.byType.map(
    (t) => html`<tr>
<td><a href="${href(base, '/jobs', listQuery({ since, types: [t.jobType] }))}">${t.jobType}</a></td>
<td class="num">${formatCount(t.total)}</td>
${STATES.map((s) => {
      const n = t.counts[s] ?? 0;
      return html`<td class="num">${n === 0 ? html`<span class="muted">0</span>` : html`<a href="${href(base, '/jobs', listQuery({ since, types: [t.jobType], states: [s] }))}">${formatCount(n)}</a>`}</td>`;
    })}
<td class="num">${formatRate(t.failureRate)}</td>
<td class="num">${formatDuration(t.p50Ms)}</td>
<td class="num">${formatDuration(t.p95Ms)}</td>
<td class="num">${formatDuration(t.maxMs)}</td>
</tr>`,
  )}</tbody>
</table>`;
}

function sectionsTable(base: string, sections: HeldSection[] | { unavailable: string }): Html {
  if (!Array.isArray(sections)) return html`<p class="muted" id="sections-unavailable">Not shown: ${sections.unavailable}</p>`;
  if (sections.length === 0) return html`<p class="muted" id="no-sections">No section is held.</p>`;
  return html`<table id="sections-held">
<thead><tr><th>user</th><th>group</th><th>holder</th><th>type</th><th>queue</th><th class="num">attempt</th><th>since</th><th class="num">held for</th><th>pg-boss state</th><th></th></tr></thead>
<tbody>${sections.map(
    (s) => html`<tr>
<td><a href="${href(base, '/jobs', listQuery({ user: s.userId }))}">${s.userId}</a></td>
<td>${s.group}</td>
<td><a class="mono" href="${href(base, `/jobs/${s.jid}`)}">${shortId(s.jid)}</a></td>
<td>${s.jobType}</td>
<td>${s.queue}</td>
<td class="num">${s.attempt}/${s.maxAttempts}</td>
<td class="time">${formatTime(s.startedAt)}</td>
<td class="num">${formatDuration(s.heldForMs)}</td>
<td>${s.bossState ?? html`<span class="muted">none</span>`}</td>
<td>${s.stale && html`<span class="badge-stale" title="its pg-boss job is settled or gone while the row still holds the section">stale</span>`}</td>
</tr>`,
  )}</tbody>
</table>`;
}
