import { html, type Html } from '../html.ts';
import { layout } from '../layout.ts';

export interface ErrorPageData {
  base: string;
  status: number;
  title: string;
  message: string;
  /** The query parameter at fault, for a 400. */
  parameter?: string;
}

export function errorPage({ base, status, title, message, parameter }: ErrorPageData): Html {
  const body = html`<div class="error-page">
<h1>${status} ${title}</h1>
<div class="panel">
${parameter && html`<p>Parameter <code id="bad-parameter">${parameter}</code></p>`}
<p id="error-message">${message}</p>
</div>
<p><a href="${base}/">overview</a> · <a href="${base}/jobs">jobs</a></p>
</div>`;
  return layout({ base, title: `${status} ${title}`, section: 'error', body });
}
