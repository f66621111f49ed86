// The dashboard's buttons: which actions a row offers, the form of each, and the POST that runs
// one. A POST is answered with a redirect back to the page it came from (POST/redirect/GET),
// which shows the outcome once from a short-lived signed cookie: a reload never sends it again.
import type { ActionName, ActionResult } from '../actions.ts';
import { ActionRefusedError } from '../errors.ts';
import type { JobLogRow, ReadOptions } from '../types.ts';
import { readCookie, setCookie } from './auth.ts';
import { rowVersion, sessionOf, type Csrf, type FormTarget } from './csrf.ts';
import type { ParsedDashboardOptions } from './options.ts';

export const FLASH_COOKIE = 'joblog_flash';
const FLASH_SECONDS = 60;
const MAX_BODY_BYTES = 4096;
const FORM_FIELDS = ['token', 'seen', 'back'] as const;
const BACK = ['job', 'overview'] as const;
type Back = (typeof BACK)[number];

export const ACTION_PATH = /^\/jobs\/([^/]+)\/(retry|cancel|release)$/;

const LABEL: Record<ActionName, string> = { retry: 'Retry', cancel: 'Cancel', release: 'Release section' };

/** What a checked POST acts on, and where it goes back to. */
export interface ActionTarget {
  action: ActionName;
  jid: string;
  seen: string;
  back: Back;
}

/** A button of a page: a POST form with its token. */
export interface ActionForm {
  action: ActionName;
  label: string;
  jid: string;
  token: string;
  seen: string;
  back: Back;
}

/** The outcome of the last action, shown once on the page it redirected to. */
export interface Flash {
  ok: boolean;
  text: string;
}

/** What the job page may offer for this row: retry a dead or failed job, cancel a pg-boss job that runs, release a held section. */
export function applicableActions(row: Pick<JobLogRow, 'state' | 'leaseUntil' | 'group' | 'userId'>): ActionName[] {
  if (row.state === 'dead' || row.state === 'failed') return ['retry'];
  if (row.state !== 'started') return [];
  const actions: ActionName[] = [];
  if (row.leaseUntil === null) actions.push('cancel');
  if (row.group !== null && row.userId !== null) actions.push('release');
  return actions;
}

/** The app allows this action for this request: `actions: true`, or `authorize` said exactly true. */
export async function allowed(config: ParsedDashboardOptions, request: Request, action: ActionName): Promise<boolean> {
  if (config.authorize) return (await config.authorize(request, action)) === true;
  return config.actions;
}

export async function formsFor(
  config: ParsedDashboardOptions,
  csrf: Csrf,
  request: Request,
  sessionId: string,
  row: { jid: string; state: string; attempt: number; startedAt: Date },
  actions: readonly ActionName[],
  back: Back,
): Promise<ActionForm[]> {
  const forms: ActionForm[] = [];
  for (const action of actions) {
    if (!(await allowed(config, request, action))) continue;
    const seen = rowVersion(row);
    forms.push({ action, label: LABEL[action], jid: row.jid, seen, back, token: csrf.token(sessionId, { action, jid: row.jid, seen }) });
  }
  return forms;
}

/** A request the action route refuses before it reads the database: status and why. */
export class ActionDenied extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'ActionDenied';
    this.status = status;
  }
}

/** The checks of a POST that need no database (after its origin's): permission, body, token. */
export async function checkActionRequest(
  config: ParsedDashboardOptions,
  csrf: Csrf,
  request: Request,
  action: ActionName,
  jid: string,
): Promise<{ seen: string; back: Back }> {
  if (!(await allowed(config, request, action))) throw new ActionDenied(403, `The application does not allow ${action} for this request.`);
  const form = await readForm(request);
  const target: FormTarget = { action, jid, seen: form.seen };
  if (!csrf.verify(sessionOf(request), target, form.token)) {
    throw new ActionDenied(403, 'Refused: this form was not made for your session (or for this job and action). Open the job page again and use its button.');
  }
  return { seen: form.seen, back: form.back };
}

async function readForm(request: Request): Promise<{ token: string; seen: string; back: Back }> {
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new ActionDenied(415, 'Expected the form of a dashboard page (application/x-www-form-urlencoded).');
  const fields = new URLSearchParams(await boundedText(request));
  for (const key of new Set(fields.keys())) {
    if (!(FORM_FIELDS as readonly string[]).includes(key)) throw new ActionDenied(400, `Unknown form field '${key.slice(0, 40)}' (known: ${FORM_FIELDS.join(', ')}).`);
    if (fields.getAll(key).length > 1) throw new ActionDenied(400, `Form field '${key}' given twice.`);
  }
  const token = fields.get('token') ?? '';
  const seen = fields.get('seen') ?? '';
  const back = fields.get('back') ?? 'job';
  if (!token) throw new ActionDenied(403, 'Refused: the form carries no token. Open the job page again and use its button.');
  if (!(BACK as readonly string[]).includes(back)) throw new ActionDenied(400, `Form field 'back' must be one of ${BACK.join(', ')}.`);
  return { token, seen, back: back as Back };
}

async function boundedText(request: Request): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) throw new ActionDenied(413, `A form is at most ${MAX_BODY_BYTES} bytes.`);
  if (!request.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw new ActionDenied(413, `A form is at most ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Run the action on the row the form was made for, and redirect back with its outcome. A form
 * whose row has moved on since (a replay, a second click, another person's action) does nothing.
 */
export async function runAction(
  config: ParsedDashboardOptions,
  csrf: Csrf,
  request: Request,
  url: URL,
  target: ActionTarget,
  reads: ReadOptions,
): Promise<Response> {
  const { action, jid } = target;
  const row = await config.joblog.get(jid, reads);
  let flash: Flash;
  if (!row) {
    flash = { ok: false, text: `Not done: the log has no job ${jid} any more.` };
  } else if (rowVersion(row) !== target.seen) {
    flash = {
      ok: false,
      text: `Not done: this form was for the job as it was (${describeVersion(target.seen)}); it is ${row.state}, attempt ${row.attempt} now. Look at it again and use the new button if it is still needed.`,
    };
  } else {
    const by = await actorName(config, request);
    flash = await outcome(action, jid, () => config.joblog[action]!(jid, { by }));
  }
  const location = target.back === 'overview' ? `${config.basePath}/#sections` : `${config.basePath}/jobs/${jid}`;
  const headers = new Headers({ location, 'cache-control': 'no-store' });
  headers.append('set-cookie', setCookie(request, url, config.basePath, FLASH_COOKIE, csrf.sign(Buffer.from(JSON.stringify(flash)).toString('base64url')), FLASH_SECONDS));
  return new Response(null, { status: 303, headers });
}

async function actorName(config: ParsedDashboardOptions, request: Request): Promise<string> {
  const by: unknown = await config.actor?.(request);
  if (by === undefined || by === null || by === '') return 'dashboard';
  if (typeof by !== 'string') throw new TypeError(`createDashboard: actor(request) returned ${typeof by}; expected a string (or undefined for 'dashboard')`);
  return by;
}

async function outcome(action: ActionName, jid: string, run: () => Promise<ActionResult>): Promise<Flash> {
  try {
    const result = await run();
    return { ok: true, text: done(action, result) };
  } catch (error) {
    if (error instanceof ActionRefusedError && error.jid === jid) return { ok: false, text: `${LABEL[action]} refused: ${error.reason}.` };
    throw error;
  }
}

function done(action: ActionName, result: ActionResult): string {
  const { row } = result;
  if (!result.changed) return `Nothing to do: the job is ${row.state} already.`;
  switch (action) {
    case 'retry':
      return `Retried: pg-boss runs the job again; its row is ${row.state}.`;
    case 'cancel':
      return `Cancelled: pg-boss cancelled the job; its row is ${row.state}.`;
    case 'release':
      return `Released: the section is free; the row is ${row.state}.`;
  }
}

function describeVersion(seen: string): string {
  const [state, attempt] = seen.split('/');
  return `${state}, attempt ${attempt}`;
}

/** The flash of the request, if it is this dashboard's; and the header that clears it. */
export function takeFlash(csrf: Csrf, request: Request, url: URL, basePath: string): { flash?: Flash; clear?: string } {
  const value = readCookie(request.headers.get('cookie'), FLASH_COOKIE);
  if (value === undefined) return {};
  const clear = setCookie(request, url, basePath, FLASH_COOKIE, '', 0);
  const payload = csrf.unsign(value);
  if (payload === undefined) return { clear };
  try {
    const flash = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Flash;
    return { flash: { ok: flash.ok === true, text: String(flash.text) }, clear };
  } catch {
    return { clear };
  }
}
