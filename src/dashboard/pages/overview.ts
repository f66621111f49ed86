import type { FindResult, HeldSection, JobState, StatsResult } from '../../types.ts';
import type { ActionForm, Flash } from '../actions.ts';
import { jobsChart, typeBarsChart } from '../chart.ts';
import { formatCount, formatDuration, formatRate, formatTime, shortId } from '../format.ts';
import { html, type Html } from '../html.ts';
import { actionForm, flashPanel, href, layout, stateBadge } from '../layout.ts';
import { DEFAULT_REFRESH_SECONDS, listQuery, overviewQuery, STATES, WINDOWS, type Window } from '../params.ts';

export interface OverviewData {
  base: string;
  window: Window;
  /** Seconds between reloads; null when switched off. */
  refresh: number | null;
  stats: StatsResult;
  /** The sections held now, or why they cannot be shown. */
  sections: HeldSection[] | { unavailable: string };
  attention: Attention;
  /** The Release button of each stale section, by holder jid (with actions on). */
  releases: Map<string, ActionForm>;
  flash: Flash | undefined;
}

/** What a person should look at: the last day's dead or failed jobs and long waits (the stale sections come from `sections`). */
export interface Attention {
  since: Date;
  dead: FindResult;
  waits: FindResult;
  longWaitMs: number;
}

/**
 * Needs attention, counts by state and type for the window, the charts, and the sections held
 * now. Reloads itself every `refresh` seconds (a meta refresh: no script) until switched off.
 */
export function overviewPage(data: OverviewData): Html {
  const { base, window, stats, refresh } = data;
  const since = stats.since;
  const totals = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<JobState, number>;
  for (const t of stats.byType) for (const s of STATES) totals[s] += t.counts[s] ?? 0;
  const all = stats.byType.reduce((n, t) => n + t.total, 0);

  const body = html`
<h1>Overview <span class="muted">· ${formatTime(since)} to ${formatTime(stats.until)} UTC</span></h1>
${flashPanel(data.flash)}
<nav class="windows" aria-label="window">${WINDOWS.map(
    (w) => html`<a href="${href(base, '/', overviewQuery({ window: w, refresh }))}" aria-current="${w.key === window.key}">${w.key}</a>`,
  )}${refreshSwitch(base, window, refresh)}</nav>
${attentionSection(base, data)}
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
${typeCharts(stats)}
<section aria-labelledby="sections">
<h2 id="sections">Sections held now</h2>
${sectionsTable(base, data.sections, data.releases)}
</section>`;
  return layout({ base, title: 'Overview', section: 'overview', body, refreshSeconds: refresh ?? undefined });
}

function refreshSwitch(base: string, window: Window, refresh: number | null): Html {
  if (refresh === null) {
    return html`<span class="refresh" id="refresh">not refreshing · <a href="${href(base, '/', overviewQuery({ window, refresh: DEFAULT_REFRESH_SECONDS }))}">refresh every ${DEFAULT_REFRESH_SECONDS} s</a></span>`;
  }
  return html`<span class="refresh" id="refresh">refreshes every ${refresh} s · <a href="${href(base, '/', overviewQuery({ window, refresh: null }))}">stop refreshing</a></span>`;
}

/** Failure rate and p95 duration of each job type in the window, as bars: the table's figures at a glance. */
function typeCharts(stats: StatsResult): Html {
  const types = stats.byType;
  const rates = types.map((t) => ({
    label: t.jobType,
    value: t.failureRate,
    text: formatRate(t.failureRate),
    title: `${t.jobType}: ${t.failureRate === null ? 'no settled runs' : `${formatRate(t.failureRate)} of ${formatCount(t.counts.finished + t.counts.failed + t.counts.dead)} settled runs failed`}`,
  }));
  const p95 = types.map((t) => ({
    label: t.jobType,
    value: t.p95Ms,
    text: formatDuration(t.p95Ms),
    title: `${t.jobType}: p95 ${formatDuration(t.p95Ms) || '—'}, p50 ${formatDuration(t.p50Ms) || '—'}, max ${formatDuration(t.maxMs) || '—'}`,
  }));
  return html`<section aria-labelledby="type-charts" class="panel">
<h2 id="type-charts">Failure rate and duration by job type</h2>
<h3>Failure rate <span class="muted">(failed + dead of settled runs)</span></h3>
${typeBarsChart('failure-rates', 'Failure rate by job type', rates, 'rate', 1)}
<h3>Duration p95 <span class="muted">(settled runs)</span></h3>
${typeBarsChart('p95-durations', 'Duration p95 by job type', p95, 'duration')}
</section>`;
}

function attentionSection(base: string, data: OverviewData): Html {
  const { attention, sections } = data;
  const stale = Array.isArray(sections) ? sections.filter((s) => s.stale) : [];
  const { dead, waits, since } = attention;
  const nothing = dead.rows.length === 0 && waits.rows.length === 0 && stale.length === 0;
  const more = (result: FindResult, query: URLSearchParams) =>
    result.nextCursor && html` · <a href="${href(base, '/jobs', query)}">more</a>`;
  return html`<section aria-labelledby="attention" class="panel attention" id="needs-attention">
<h2 id="attention">Needs attention <span class="muted">· last 24 h</span></h2>
${nothing && html`<p class="muted" id="nothing-needs-attention">Nothing: no job died or failed, no section is stale, no job waited ${formatDuration(attention.longWaitMs)} or more.</p>`}
${dead.rows.length > 0 && html`<h3>Dead or failed${more(dead, listQuery({ since, states: ['dead', 'failed'] }))}</h3>
<ul id="attention-dead">${dead.rows.map(
      (r) => html`<li><a class="mono" href="${href(base, `/jobs/${r.jid}`)}">${shortId(r.jid)}</a> ${r.jobType}${r.userId !== null && html` · user ${r.userId}`} · ${r.finishedAt ? formatTime(r.finishedAt) : ''} UTC${r.error && html` · <span class="error-message">${r.error.message}</span>`}</li>`,
    )}</ul>`}
${stale.length > 0 && html`<h3>Stale sections <span class="muted">(the holder is gone; the reaper frees them)</span></h3>
<ul id="attention-stale">${stale.map(
      (s) => html`<li><a class="mono" href="${href(base, `/jobs/${s.jid}`)}">${shortId(s.jid)}</a> ${s.jobType} · user ${s.userId} · group ${s.group} · held ${formatDuration(s.heldForMs)} · pg-boss ${s.bossState ?? 'has no job'}${data.releases.get(s.jid) && html` ${actionForm(base, data.releases.get(s.jid)!)}`}</li>`,
    )}</ul>`}
${waits.rows.length > 0 && html`<h3>Long waits <span class="muted">(${formatDuration(attention.longWaitMs)} or more for the section)</span>${waits.nextCursor && ' · more not shown'}</h3>
<ul id="attention-waits">${waits.rows.map(
      (r) => html`<li><a class="mono" href="${href(base, `/jobs/${r.jid}`)}">${shortId(r.jid)}</a> ${r.jobType}${r.userId !== null && html` · user ${r.userId}`}${r.group !== null && html` · group ${r.group}`} · waited <b>${formatDuration(r.waitedMs)}</b> · ${stateBadge(r.state)}</li>`,
    )}</ul>`}
</section>`;
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

function sectionsTable(base: string, sections: HeldSection[] | { unavailable: string }, releases: Map<string, ActionForm>): Html {
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
<td>${s.stale && html`<span class="badge-stale" title="its pg-boss job is settled or gone while the row still holds the section">stale</span>`}${releases.get(s.jid) && html` ${actionForm(base, releases.get(s.jid)!)}`}</td>
</tr>`,
  )}</tbody>
</table>`;
}
