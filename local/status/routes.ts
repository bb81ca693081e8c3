import { createHash, timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { html, raw } from 'hono/html';
import { NONCE, secureHeaders } from 'hono/secure-headers';
import { describeError, TransientError } from '../../shared/errors.ts';
import type { StatusModel } from './model.ts';
import { renderStatusPage } from './render.ts';
import { createSessionStore, type SessionStore } from './sessions.ts';

export const sessionCookieName = 'cldist_session';

export interface StatusAppOptions {
  adminToken: string;
  getStatus: () => Promise<StatusModel>;
  refreshSeconds: number;
  /** `api.publicBaseUrl`: when it is https, the cookie is `Secure` and that origin may post the login form. */
  publicBaseUrl?: string;
  /** Default 12 hours. */
  sessionTtlSeconds?: number;
  /** Default 1000. */
  maxSessions?: number;
  clock?: () => number;
}

/** Hash first, so the comparison takes the same time whatever the lengths. */
export function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

const loginStyle = 'body{font:15px system-ui,sans-serif;margin:2rem}.error{color:#a00}';

/**
 * A link of the form `/#token=…` (what the runner prints) signs in without the token ever reaching a URL
 * the server, a proxy or the history sees: a fragment is never sent, and the script takes it out of the
 * address bar before it posts the form.
 */
const fragmentLogin =
  "(function(){var m=/^#token=([^&]+)/.exec(location.hash);if(!m)return;history.replaceState(null,'',location.pathname);var f=document.getElementById('login');f.elements.token.value=decodeURIComponent(m[1]);f.submit();})();";

type Problem = 'wrong-token' | 'token-in-url' | undefined;

const problemText: Record<Exclude<Problem, undefined>, string> = {
  'wrong-token': 'That token is not the admin token.',
  'token-in-url':
    'The admin token is not accepted in the URL query (it would stay in history and logs). Type it below, or open /#token=… instead.',
};

function loginPage(c: Context, problem: Problem) {
  const nonce = c.get('secureHeadersNonce') ?? '';
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cldist: sign in</title><style nonce="${nonce}">${loginStyle}</style></head>
<body>
<h1>cldist status</h1>
${problem === undefined ? '' : html`<p class="error">${problemText[problem]}</p>`}
<form id="login" method="post" action="/login">
<label>Admin token (printed at start, and kept in <code>{data-dir}/admin-token</code>):
<input name="token" type="password" autocomplete="current-password" size="50" autofocus></label>
<button type="submit">Open</button>
</form>
<script nonce="${nonce}">${raw(fragmentLogin)}</script>
</body></html>`;
}

/** While the ledger restarts (a full disk), the page says so and keeps reloading instead of failing. */
function unavailablePage(nonce: string, refreshSeconds: number, cause: string) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refreshSeconds}">
<title>cldist status</title><style nonce="${nonce}">${loginStyle}</style></head>
<body><h1>cldist status</h1>
<p class="error">The ledger is not answering right now (${cause}). This page reloads every ${refreshSeconds} s; configs already registered are still served.</p>
</body></html>`;
}

function readSession(c: Context, sessions: SessionStore): string | undefined {
  const id = getCookie(c, sessionCookieName);
  return sessions.valid(id) ? id : undefined;
}

/** A strict CSP (inline code only with the response's nonce), no framing, no sniffing, no referrer. */
const pageHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: [NONCE],
    styleSrc: [NONCE],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: 'DENY',
  referrerPolicy: 'no-referrer',
});

/** The page itself, or a 503 page that reloads while the ledger is not answering. */
async function statusPage(c: Context, options: StatusAppOptions): Promise<Response> {
  const noStore = { 'Cache-Control': 'no-store' };
  const nonce = c.get('secureHeadersNonce') ?? '';
  let model: StatusModel;
  try {
    model = await options.getStatus();
  } catch (error) {
    if (!(error instanceof TransientError)) throw error;
    return c.html(unavailablePage(nonce, options.refreshSeconds, describeError(error)), 503, {
      ...noStore,
      'Retry-After': String(options.refreshSeconds),
    });
  }
  return c.html(renderStatusPage(model, options.refreshSeconds, nonce), 200, noStore);
}

/**
 * `/` and `/v1/status`, both behind the admin token. Scripts send `Authorization: Bearer`; a person signs
 * in with a form posted to `/login`, which sets a cookie holding a random session id (HttpOnly,
 * SameSite=Strict, Max-Age, and Secure behind https). Every response of these routes carries a strict
 * CSP (inline code only with the response's nonce), `X-Frame-Options: DENY` and `nosniff`.
 */
export function createStatusApp(options: StatusAppOptions): Hono {
  const app = new Hono();
  const ttl = options.sessionTtlSeconds ?? 12 * 3600;
  const sessions = createSessionStore({
    ttlSeconds: ttl,
    max: options.maxSessions ?? 1000,
    clock: options.clock,
  });
  const publicOrigin =
    options.publicBaseUrl === undefined ? undefined : new URL(options.publicBaseUrl).origin;
  const secure = publicOrigin?.startsWith('https:') === true;
  for (const path of ['/', '/login', '/logout', '/v1/status']) app.use(path, pageHeaders);
  const sameOrigin = csrf({
    origin: (origin, c) => origin === new URL(c.req.url).origin || origin === publicOrigin,
  });
  const smallForm = bodyLimit({ maxSize: 4096, onError: (c) => c.text('login form too large\n', 413) });
  const authorised = (c: Context): boolean => {
    const token = bearer(c.req.header('Authorization'));
    if (token !== undefined) return sameToken(token, options.adminToken);
    return readSession(c, sessions) !== undefined;
  };
  const noStore = { 'Cache-Control': 'no-store' };

  app.get('/', async (c) => {
    if (!authorised(c)) {
      const problem = c.req.query('token') === undefined ? undefined : 'token-in-url';
      return c.html(loginPage(c, problem), 401, noStore);
    }
    return statusPage(c, options);
  });

  app.post('/login', sameOrigin, smallForm, async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const token = typeof form.token === 'string' ? form.token : '';
    if (!sameToken(token, options.adminToken)) return c.html(loginPage(c, 'wrong-token'), 401, noStore);
    setCookie(c, sessionCookieName, sessions.create(), {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      maxAge: ttl,
      secure,
    });
    return c.redirect('/', 303);
  });

  app.post('/logout', sameOrigin, (c) => {
    sessions.end(getCookie(c, sessionCookieName));
    deleteCookie(c, sessionCookieName, { path: '/', secure });
    return c.redirect('/', 303);
  });

  app.get('/v1/status', async (c) => {
    if (!authorised(c)) {
      return c.json(
        { error: 'unauthorized', message: 'send the admin token as "Authorization: Bearer …"' },
        401,
        { 'WWW-Authenticate': 'Bearer' },
      );
    }
    try {
      return c.json(await options.getStatus(), 200, noStore);
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      return c.json({ error: 'unavailable', message: describeError(error) }, 503, {
        ...noStore,
        'Retry-After': String(options.refreshSeconds),
      });
    }
  });
  return app;
}
