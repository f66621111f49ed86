import type { FindResult, JobLogListRow } from '../../types.ts';
import { formatDuration, formatTime, shortId, toLocalInput } from '../format.ts';
import { html, type Html } from '../html.ts';
import { href, layout, stateBadge } from '../layout.ts';
import { listQuery, MAX_LIMIT, STATES, type ListFilters } from '../params.ts';

export interface JobListData {
  base: string;
  filters: ListFilters;
  result: FindResult;
  /** Job types to offer as filters (those seen lately, and those asked for). */
  knownTypes: string[];
}

const MESSAGE_CHARS = 140;

/** The filter form, one page of rows newest first, and the link to the next (older) page. */
export function jobListPage(data: JobListData): Html {
  const { base, filters, result } = data;
  const firstPage = { ...filters, cursor: undefined };
  const body = html`
<h1>Jobs</h1>
${filterForm(base, filters, data.knownTypes)}
${result.rows.length === 0
    ? html`<p class="muted" id="no-rows">No job matches these filters${filters.cursor ? ' on this page' : ''}.</p>`
    : rowsTable(base, result.rows)}
<nav class="pager" aria-label="pages">
${filters.cursor && html`<a href="${href(base, '/jobs', listQuery(firstPage))}" rel="first">« newest</a>`}
${result.nextCursor && html`<a href="${href(base, '/jobs', listQuery({ ...filters, cursor: result.nextCursor }))}" rel="next" id="older">older »</a>`}
<span class="muted">${result.rows.length} row${result.rows.length === 1 ? '' : 's'}${result.nextCursor ? '' : ', no older rows'}</span>
</nav>`;
  return layout({ base, title: 'Jobs', section: 'jobs', body });
}

function filterForm(base: string, f: ListFilters, knownTypes: string[]): Html {
  const types = [...new Set([...knownTypes, ...f.types])].sort();
  return html`<form class="filters panel" action="${base}/jobs" method="get">
<label>user<input name="user" value="${f.user ?? ''}"></label>
<label>group<input name="group" value="${f.group ?? ''}"></label>
<label>job id<input name="jid" value="${f.jid ?? ''}" placeholder="UUID"></label>
<label>started since (UTC)<input type="datetime-local" step="1" name="since" value="${f.since ? toLocalInput(f.since) : ''}"></label>
<label>started before (UTC)<input type="datetime-local" step="1" name="until" value="${f.until ? toLocalInput(f.until) : ''}"></label>
<label>rows per page<input type="number" min="1" max="${MAX_LIMIT}" name="limit" value="${f.limit}"></label>
<fieldset><legend>state</legend>${STATES.map(
    (s) => html`<label><input type="checkbox" name="state" value="${s}" ${f.states.includes(s) && html`checked`}>${s}</label>`,
  )}</fieldset>
<fieldset><legend>type</legend>${types.length === 0
    ? html`<span class="muted">none seen lately</span>`
    : types.map((t) => html`<label><input type="checkbox" name="type" value="${t}" ${f.types.includes(t) && html`checked`}>${t}</label>`)}</fieldset>
<div class="actions"><button type="submit">Filter</button><a href="${base}/jobs">clear</a></div>
</form>`;
}

function rowsTable(base: string, rows: JobLogListRow[]): Html {
  return html`<table id="jobs">
<thead><tr><th>started (UTC)</th><th>job</th><th>type</th><th>state</th><th>user</th><th>group</th><th class="num">attempt</th><th class="num">duration</th><th>error</th></tr></thead>
<tbody>${rows.map(
    (r) => html`<tr data-jid="${r.jid}">
<td class="time">${formatTime(r.startedAt)}</td>
<td><a class="mono job-link" href="${href(base, `/jobs/${r.jid}`)}">${shortId(r.jid)}</a></td>
<td>${r.jobType}</td>
<td>${stateBadge(r.state)}</td>
<td class="nowrap">${r.userId ?? ''}</td>
<td>${r.group ?? ''}</td>
<td class="num">${r.attempt}/${r.maxAttempts}</td>
<td class="num">${formatDuration(r.durationMs)}</td>
<td class="msg">${r.error && truncate(r.error.message)}${r.holderJid && html` <span class="muted">held by</span> <a class="mono" href="${href(base, `/jobs/${r.holderJid}`)}">${shortId(r.holderJid)}</a>`}</td>
</tr>`,
  )}</tbody>
</table>`;
}

// find() gives up to 200 characters of a message, so a cut one is always longer than this.
function truncate(text: string): string {
  return text.length > MESSAGE_CHARS ? `${text.slice(0, MESSAGE_CHARS - 1)}…` : text;
}
