// The frame of every page: one stylesheet (inline, allowed by its hash in the CSP), the
// navigation and a jump-to-job form. No scripts at all.
import { createHash } from 'node:crypto';
import type { JobState } from '../types.ts';
import type { ActionForm, Flash } from './actions.ts';
import { html, unsafeRaw, type Html } from './html.ts';

const CSS = `
:root { color-scheme: light; --fg: #1d232b; --muted: #5d6b7a; --line: #dde3ea; --bg: #f6f8fa; --accent: #2358a6;
  --ok: #23864a; --bad: #c0352b; --warn: #a86500; --run: #2358a6; --skip: #6b6f76; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #18202b; color: #fff; }
header .brand { font-weight: 600; letter-spacing: .02em; }
header nav a { color: #cfd8e3; text-decoration: none; margin-right: 16px; }
header nav a[aria-current="page"] { color: #fff; border-bottom: 2px solid #fff; padding-bottom: 2px; }
header form { margin-left: auto; display: flex; gap: 6px; }
header input { width: 300px; }
main { padding: 18px 24px 40px; max-width: 1280px; }
h1 { font-size: 20px; margin: 4px 0 14px; }
h2 { font-size: 16px; margin: 26px 0 10px; }
a { color: var(--accent); }
.muted, .empty { color: var(--muted); fill: var(--muted); }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; text-decoration: none; color: var(--fg); }
.card b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.windows { display: flex; gap: 6px; margin-bottom: 14px; }
.windows a { padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: #fff; text-decoration: none; }
.windows a[aria-current="true"] { background: var(--accent); color: #fff; border-color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef2f6; font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.msg { max-width: 420px; overflow-wrap: anywhere; }
td.time, td.nowrap { white-space: nowrap; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f3f5f8; border: 1px solid var(--line); padding: 8px 10px; border-radius: 4px; margin: 6px 0 0; }
.state { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.state-finished { background: var(--ok); } .state-failed { background: var(--bad); } .state-dead { background: #7a1f18; }
.state-started { background: var(--run); } .state-skipped { background: var(--skip); }
.badge-stale { background: var(--warn); color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; }
.chart { width: 100%; height: auto; max-height: 300px; display: block; }
.chart .total { fill: #8fb0de; } .chart .failed { fill: var(--bad); }
.chart .bucket:hover .total { fill: #5f8fd3; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart .axis { font-size: 11px; fill: var(--muted); }
.legend { display: flex; gap: 16px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 5px; vertical-align: -1px; }
.legend .total { background: #8fb0de; } .legend .failed { background: var(--bad); }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px 16px; margin-bottom: 14px; }
form.filters label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
form.filters fieldset { border: 1px solid var(--line); border-radius: 4px; margin: 0; padding: 4px 10px 6px; font-size: 13px; }
form.filters fieldset label { flex-direction: row; align-items: center; gap: 5px; color: var(--fg); font-size: 13px; }
form.filters .actions { display: flex; align-items: end; gap: 12px; }
input, select, button { font: inherit; padding: 4px 6px; border: 1px solid #b9c3ce; border-radius: 4px; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; padding: 4px 14px; }
.pager { display: flex; gap: 16px; margin-top: 12px; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.fields dt { color: var(--muted); } dl.fields dd { margin: 0; }
.error-page .panel { border-color: var(--bad); }
h3 { font-size: 13px; margin: 14px 0 6px; }
.chart.bars { max-height: none; }
.chart .rate { fill: var(--bad); } .chart .duration { fill: var(--accent); }
.refresh { margin-left: auto; font-size: 12px; color: var(--muted); align-self: center; }
.attention ul { margin: 0; padding-left: 18px; } .attention li { margin: 3px 0; }
.attention { margin-bottom: 14px; border-color: var(--warn); }
form.action { display: inline; margin: 0; }
form.action button { padding: 2px 12px; }
form.action button.cancel, form.action button.release { background: var(--bad); border-color: var(--bad); }
.actions-bar { display: flex; gap: 8px; margin: 10px 0; }
.flash { margin: 0 0 14px; padding: 8px 12px; border-radius: 6px; border: 1px solid; }
.flash.ok { background: #e9f6ee; border-color: var(--ok); } .flash.refused { background: #fbeceb; border-color: var(--bad); }
`;

/** For the Content-Security-Policy: the one inline stylesheet is allowed by its hash. */
export const STYLE_HASH = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`;

export type Section = 'overview' | 'jobs' | 'job' | 'error';

export interface PageFrame {
  base: string;
  title: string;
  section: Section;
  body: Html;
  /** Reload the page every so many seconds (a meta refresh: works without scripts). */
  refreshSeconds?: number;
}

/** A whole document around `body`. */
export function layout({ base, title, section, body, refreshSeconds }: PageFrame): Html {
  const current = (s: Section) => (s === section ? 'page' : 'false');
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
${refreshSeconds !== undefined && html`<meta http-equiv="refresh" content="${refreshSeconds}">`}
<title>${title} · job log</title>
<style>${unsafeRaw(CSS)}</style>
</head>
<body>
<header>
<span class="brand">pg-boss job log</span>
<nav><a href="${base}/" aria-current="${current('overview')}">Overview</a><a href="${base}/jobs" aria-current="${current('jobs')}">Jobs</a></nav>
<form action="${base}/jobs" method="get" role="search"><input name="jid" placeholder="job id (UUID)" aria-label="job id"><button type="submit">Find</button></form>
</header>
<main>
${body}
</main>
</body>
</html>
`;
}

export function stateBadge(state: JobState | string): Html {
  return html`<span class="state state-${state}">${state}</span>`;
}

/** A path under the dashboard, with an optional query. */
export function href(base: string, path: string, query?: URLSearchParams): string {
  const q = query?.toString();
  return `${base}${path}${q ? `?${q}` : ''}`;
}

/** A button that POSTs one action, with the session's token and the row it was made for. */
export function actionForm(base: string, form: ActionForm): Html {
  return html`<form class="action" method="post" action="${base}/jobs/${form.jid}/${form.action}"><input type="hidden" name="token" value="${form.token}"><input type="hidden" name="seen" value="${form.seen}"><input type="hidden" name="back" value="${form.back}"><button type="submit" class="${form.action}" data-action="${form.action}">${form.label}</button></form>`;
}

/** The outcome of the action that redirected here. */
export function flashPanel(flash: Flash | undefined): Html {
  return html`${flash && html`<p class="flash ${flash.ok ? 'ok' : 'refused'}" id="flash" role="status">${flash.text}</p>`}`;
}
