import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { StatusModel } from './model.ts';
import { renderStatusPage } from './render.ts';

export const adminCookieName = 'cldist_admin';

export interface StatusAppOptions {
  adminToken: string;
  getStatus: () => Promise<StatusModel>;
  refreshSeconds: number;
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

const loginPage = (failed: boolean) => html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cldist: sign in</title></head>
<body style="font:15px system-ui,sans-serif;margin:2rem">
<h1>cldist status</h1>
${failed ? html`<p style="color:#a00">That token is not the admin token.</p>` : ''}
<form method="get" action="/">
<label>Admin token (printed at start, and kept in <code>{data-dir}/admin-token</code>):
<input name="token" type="password" autocomplete="current-password" size="50" autofocus></label>
<button type="submit">Open</button>
</form></body></html>`;

/**
 * `/` and `/v1/status`, both behind the admin token. Scripts send `Authorization: Bearer`; a person opens
 * `/?token=…` once, which sets an HttpOnly, SameSite=Strict cookie and redirects so the token leaves the
 * address bar and history.
 */
export function createStatusApp(options: StatusAppOptions): Hono {
  const app = new Hono();
  const authorised = (header: string | undefined, cookie: string | undefined): boolean => {
    const given = bearer(header) ?? cookie;
    return given !== undefined && sameToken(given, options.adminToken);
  };

  app.get('/', async (c) => {
    const query = c.req.query('token');
    if (query !== undefined) {
      if (!sameToken(query, options.adminToken)) return c.html(loginPage(true), 401);
      setCookie(c, adminCookieName, query, { httpOnly: true, sameSite: 'Strict', path: '/' });
      return c.redirect('/', 303);
    }
    if (!authorised(c.req.header('Authorization'), getCookie(c, adminCookieName))) {
      return c.html(loginPage(false), 401, { 'Cache-Control': 'no-store' });
    }
    const model = await options.getStatus();
    return c.html(renderStatusPage(model, options.refreshSeconds), 200, { 'Cache-Control': 'no-store' });
  });

  app.get('/v1/status', async (c) => {
    if (!authorised(c.req.header('Authorization'), getCookie(c, adminCookieName))) {
      return c.json(
        { error: 'unauthorized', message: 'send the admin token as "Authorization: Bearer …"' },
        401,
        {
          'WWW-Authenticate': 'Bearer',
        },
      );
    }
    return c.json(await options.getStatus(), 200, { 'Cache-Control': 'no-store' });
  });
  return app;
}
