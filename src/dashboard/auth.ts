// The token check of a dashboard that runs without the host app's auth. The token is shown once
// (`?token=`, then a redirect drops it from the address bar and history) or on every request
// (`Authorization: Bearer`); either one admits. The cookie holds a digest keyed by the token, not the token.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const COOKIE = 'joblog_dashboard';

export type TokenCheck =
  | { outcome: 'ok' }
  | { outcome: 'missing' }
  | { outcome: 'wrong'; via: 'query' | 'header' | 'cookie' }
  /** A correct `?token=`: set the cookie and redirect to the same URL without it. */
  | { outcome: 'set-cookie'; location: string; cookie: string };

const digest = (s: string) => createHash('sha256').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('pg-boss-joblog dashboard session').digest('base64url');
}

export function checkToken(request: Request, url: URL, token: string, basePath: string): TokenCheck {
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null) {
    if (!same(fromQuery, token)) return { outcome: 'wrong', via: 'query' };
    const rest = new URLSearchParams(url.searchParams);
    rest.delete('token');
    const query = rest.toString();
    const cookie = setCookie(request, url, basePath, COOKIE, sessionValue(token));
    return { outcome: 'set-cookie', location: `/${url.pathname.replace(/^\/+/, '')}${query ? `?${query}` : ''}`, cookie };
  }
  // Either credential admits. An Authorization header of another scheme (Basic, from a proxy in
  // front) is not this dashboard's and neither admits nor refuses.
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get('authorization')?.trim() ?? '')?.[1];
  const cookie = readCookie(request.headers.get('cookie'), COOKIE);
  if (bearer !== undefined && same(bearer, token)) return { outcome: 'ok' };
  if (cookie !== undefined && same(cookie, sessionValue(token))) return { outcome: 'ok' };
  if (bearer !== undefined) return { outcome: 'wrong', via: 'header' };
  if (cookie !== undefined) return { outcome: 'wrong', via: 'cookie' };
  return { outcome: 'missing' };
}

/**
 * A `Set-Cookie` value of the dashboard: HttpOnly, SameSite=Strict, for its own path, Secure
 * over https. Without `maxAgeSeconds` it lasts as long as the browser session.
 */
export function setCookie(request: Request, url: URL, basePath: string, name: string, value: string, maxAgeSeconds?: number): string {
  const secure = url.protocol === 'https:' || request.headers.get('x-forwarded-proto') === 'https';
  return [
    `${name}=${value}`,
    `Path=${basePath || '/'}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(maxAgeSeconds === undefined ? [] : [`Max-Age=${maxAgeSeconds}`]),
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

export function readCookie(header: string | null, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
