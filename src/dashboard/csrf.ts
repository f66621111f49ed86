// What keeps another site from acting through a visitor's browser, without scripts (the signed
// double-submit pattern):
//   - a session cookie of the dashboard's own (random id, HttpOnly, SameSite=Strict), set on the
//     first page it serves with actions on, whatever admitted the visitor (token or the app's auth);
//   - each action form carries a token: an HMAC, keyed by the dashboard's secret, of that session
//     id, the action, the job and what the page showed of its row (state, attempt, start).
//     Another site can neither read the token nor make one, and a form of another session (an old
//     cookie, someone else's browser) does not match this one's;
//   - a POST whose Origin or Sec-Fetch-Site says it came from another site is refused before
//     anything else is looked at.
// A form is good for the row as it was shown: once the action (or anything else) has moved the
// row on, sending the same form again is refused as stale, so a replayed form never acts twice.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ActionName } from '../actions.ts';
import { readCookie, setCookie } from './auth.ts';

export const SESSION_COOKIE = 'joblog_session';
const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;

/** What a form acts on: the action, the job, and the row as the page showed it. */
export interface FormTarget {
  action: ActionName;
  jid: string;
  /** `rowVersion(...)` of the row the page showed. */
  seen: string;
}

/** The part of a row a form is bound to: it changes with every action's transition. */
export function rowVersion(row: { state: string; attempt: number; startedAt: Date }): string {
  return `${row.state}/${row.attempt}/${row.startedAt.toISOString()}`;
}

export interface Session {
  id: string;
  /** Set when the request had no (well-formed) session cookie: send it with the response. */
  cookie?: string;
}

export class Csrf {
  readonly #key: Buffer;

  constructor(secret: string | undefined) {
    this.#key = secret === undefined ? randomBytes(32) : Buffer.from(secret);
  }

  /** The request's session, or a new one (with its cookie) when it has none. */
  session(request: Request, url: URL, basePath: string): Session {
    const id = sessionOf(request);
    if (id) return { id };
    const fresh = randomBytes(16).toString('base64url');
    return { id: fresh, cookie: setCookie(request, url, basePath, SESSION_COOKIE, fresh) };
  }

  token(sessionId: string, target: FormTarget): string {
    return this.#mac(['form', sessionId, target.action, target.jid, target.seen]);
  }

  /** The token was made for this session and target; compared in constant time. */
  verify(sessionId: string | undefined, target: FormTarget, token: string): boolean {
    if (!sessionId) return false;
    const expected = Buffer.from(this.token(sessionId, target));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** A value signed by this dashboard (the flash cookie): `payload.mac`. */
  sign(payload: string): string {
    return `${payload}.${this.#mac(['flash', payload])}`;
  }

  /** The payload of a `sign(...)` value, or undefined when it is not this dashboard's. */
  unsign(value: string): string | undefined {
    const dot = value.lastIndexOf('.');
    if (dot < 0) return undefined;
    const payload = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1));
    const expected = Buffer.from(this.#mac(['flash', payload]));
    return given.length === expected.length && timingSafeEqual(given, expected) ? payload : undefined;
  }

  #mac(parts: string[]): string {
    // Each part is length-prefixed: no two lists of parts give the same input.
    return createHmac('sha256', this.#key).update(parts.map((p) => `${p.length}:${p}`).join('')).digest('base64url');
  }
}

/** The session id of the request's cookie, if well formed. */
export function sessionOf(request: Request): string | undefined {
  const id = readCookie(request.headers.get('cookie'), SESSION_COOKIE);
  return id !== undefined && SESSION_ID.test(id) ? id : undefined;
}

/**
 * Why a POST looks cross-site, or null. Browsers send `Sec-Fetch-Site` with every form POST (the
 * browser's own judgement of who sent it), and `Origin`. The dashboard's pages have
 * `Referrer-Policy: no-referrer`, under which a browser sends `Origin: null` even for its own
 * forms: `null` is not taken as a refusal, the token decides. A request with neither header
 * (curl, a script, an old browser) still needs the session's token.
 */
export function crossSiteReason(request: Request, url: URL): string | null {
  const site = request.headers.get('sec-fetch-site');
  if (site !== null && site !== 'same-origin') return `the form was sent from another site (Sec-Fetch-Site: ${site})`;
  const origin = request.headers.get('origin');
  if (origin === null || origin === 'null') return null;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `the form was sent from an unknown origin (${origin.slice(0, 100)})`;
  }
  // The address the browser used: a proxy in front may have passed it on as X-Forwarded-Host.
  // A cross-site form cannot set either header.
  const own = request.headers.get('x-forwarded-host')?.split(',')[0]?.trim() || request.headers.get('host') || url.host;
  return host === own ? null : `the form was sent from another origin (${origin.slice(0, 100)})`;
}
