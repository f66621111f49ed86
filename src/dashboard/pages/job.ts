import { isActionEntry } from '../../rows.ts';
import { ERRORS_KEPT } from '../../sql.ts';
import type { JobLogRow, RecordedError } from '../../types.ts';
import { formatDuration, formatTime, shortId } from '../format.ts';
import { html, type Html } from '../html.ts';
import type { ActionForm, Flash } from '../actions.ts';
import { actionForm, flashPanel, href, layout, stateBadge } from '../layout.ts';
import { listQuery } from '../params.ts';

export interface JobPageOptions {
  /** Show each error's stack (the dashboard's `showStacks`). */
  showStacks: boolean;
  /** The buttons of the actions that apply and the app allows (none on a read-only dashboard). */
  forms?: ActionForm[];
  /** The outcome of the action that redirected here. */
  flash?: Flash;
}

/** One job: its row, each attempt and its error. */
export function jobPage(base: string, row: JobLogRow, options: JobPageOptions): Html {
  const time = (d: Date | null) => (d ? html`<time datetime="${d.toISOString()}">${formatTime(d)} UTC</time>` : html`<span class="muted">—</span>`);
  const body = html`
<h1>${row.jobType} <span class="mono muted">${row.jid}</span> ${stateBadge(row.state)}</h1>
${flashPanel(options.flash)}
${options.forms !== undefined && options.forms.length > 0 && html`<div class="actions-bar" id="actions">${options.forms.map((f) => actionForm(base, f))}</div>`}
<div class="panel">
<dl class="fields" id="fields">
<dt>state</dt><dd>${stateBadge(row.state)} ${explainState(row)}</dd>
<dt>queue</dt><dd>${row.queue}</dd>
<dt>user</dt><dd>${row.userId === null ? html`<span class="muted">none</span>` : html`<a href="${href(base, '/jobs', listQuery({ user: row.userId }))}">${row.userId}</a>`}</dd>
<dt>group</dt><dd>${row.group ?? html`<span class="muted">none (takes no section)</span>`}</dd>
<dt>attempt</dt><dd>${row.attempt} of ${row.maxAttempts}</dd>
${row.holderJid && html`<dt>section held by</dt><dd><a class="mono" href="${href(base, `/jobs/${row.holderJid}`)}">${row.holderJid}</a></dd>`}
<dt>queued</dt><dd>${time(row.queuedAt)}</dd>
<dt>started</dt><dd>${time(row.startedAt)}</dd>
<dt>finished</dt><dd>${time(row.finishedAt)}</dd>
<dt>duration</dt><dd>${row.durationMs === null ? html`<span class="muted">—</span>` : formatDuration(row.durationMs)}</dd>
<dt>updated</dt><dd>${time(row.updatedAt)}</dd>
</dl>
</div>
<h2>Attempts</h2>
${attemptsTable(row, options)}
<p><a href="${href(base, '/jobs', listQuery({ types: [row.jobType], ...(row.userId === null ? {} : { user: row.userId }) }))}">other ${row.jobType} jobs${row.userId === null ? '' : ` of user ${row.userId}`}</a></p>`;
  return layout({ base, title: `${row.jobType} ${shortId(row.jid)}`, section: 'job', body });
}

function explainState(row: JobLogRow): string {
  switch (row.state) {
    case 'started':
      return row.errors.length > 0 ? 'waiting for its retry, or running it' : 'running';
    case 'finished':
      return row.attempt > 1 ? `succeeded on attempt ${row.attempt}` : 'succeeded';
    case 'failed':
      return 'failed and is not retried';
    case 'dead':
      return 'failed on its last attempt';
    case 'skipped':
      return 'did not run: another job held its section';
  }
}

/** One line per attempt: its error if it failed, else the row's outcome for the last one. */
function attemptsTable(row: JobLogRow, options: JobPageOptions): Html {
  const details = (error: RecordedError) => errorDetails(error, options.showStacks);
  // Actions (retry, cancel, release) are listed after the attempts, never in an attempt's place.
  const failures = row.errors.filter((e) => !isActionEntry(e));
  const byAttempt = new Map(failures.map((e) => [e.attempt, e]));
  const attempts = Array.from({ length: Math.max(row.attempt, ...failures.map((e) => e.attempt)) }, (_, i) => i + 1);
  const actions = row.errors.filter(isActionEntry);
  return html`<table id="attempts">
<thead><tr><th class="num">attempt</th><th>outcome</th><th>at (UTC)</th><th>error</th></tr></thead>
<tbody>${attempts.map((n) => {
    const failure = byAttempt.get(n);
    if (failure) {
      const outcome = n !== row.attempt ? 'failed' : row.state === 'started' ? 'failed, retry due' : row.state;
      return html`<tr><td class="num">${n}</td><td>${outcome}</td><td>${formatTime(new Date(failure.at))}</td><td class="msg">${details(failure.error)}</td></tr>`;
    }
    if (n === row.attempt) {
      const lastError = row.state !== 'finished' && row.state !== 'started' && row.error;
      return html`<tr><td class="num">${n}</td><td>${row.state === 'started' ? 'running' : row.state}</td><td>${row.finishedAt ? formatTime(row.finishedAt) : ''}</td><td class="msg">${lastError && details(lastError)}</td></tr>`;
    }
    const dropped = row.errors.length >= ERRORS_KEPT && n > row.errors[0]!.attempt && n < row.errors[1]!.attempt;
    const note = dropped ? `error not kept (errors keeps the first and the last ${ERRORS_KEPT - 1})` : 'no error recorded';
    return html`<tr><td class="num">${n}</td><td class="muted">${note}</td><td></td><td></td></tr>`;
  })}${actions.map((a) => html`<tr class="action"><td class="num"></td><td>action</td><td>${formatTime(new Date(a.at))}</td><td class="msg">${a.error.message}</td></tr>`)}</tbody>
</table>`;
}

function errorDetails(error: RecordedError, showStack: boolean): Html {
  return html`<div class="error"><b>${error.name}</b>${error.code && html` <code>${error.code}</code>`}: <span class="error-message">${error.message}</span>
${showStack && error.stack && html`<details><summary>stack</summary><pre>${error.stack}</pre></details>`}</div>`;
}
