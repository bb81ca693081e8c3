import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createStatusApp, sessionCookieName } from '../../local/status/routes.ts';
import { createSessionStore } from '../../local/status/sessions.ts';
import { TransientError } from '../../shared/errors.ts';
import { emptyStatusModel } from '../support/status-model.ts';

const token = 'admin-token-0123456789';
const origin = 'http://127.0.0.1:8080';

const model = emptyStatusModel({
  generatedAt: '2026-01-01T00:00:00.000Z',
  worker: { inFlight: 0, concurrency: 1 },
  mirrorBaseUrl: `${origin}/mirror`,
});

function app(options: { publicBaseUrl?: string; now?: () => number; maxSessions?: number } = {}) {
  return createStatusApp({
    adminToken: token,
    getStatus: async () => model,
    refreshSeconds: 5,
    publicBaseUrl: options.publicBaseUrl,
    clock: options.now,
    maxSessions: options.maxSessions,
    sessionTtlSeconds: 3600,
  });
}

function login(target: ReturnType<typeof app>, given: string, from = origin) {
  return target.request(`${origin}/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: from },
    body: new URLSearchParams({ token: given }).toString(),
  });
}

function sessionOf(response: Response): string {
  const match = new RegExp(`${sessionCookieName}=([^;]+)`).exec(response.headers.get('set-cookie') ?? '');
  if (match?.[1] === undefined) throw new Error('no session cookie set');
  return match[1];
}

const withSession = (id: string) => ({ headers: { Cookie: `${sessionCookieName}=${id}` } });

describe('status page login', () => {
  it('sets a random session id, never the token, with HttpOnly, SameSite=Strict and Max-Age', async () => {
    const target = app();
    const answer = await login(target, token);
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/');
    const cookie = answer.headers.get('set-cookie') ?? '';
    expect(cookie).not.toContain(token);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Max-Age=3600/);
    expect(cookie).not.toMatch(/Secure/);
    expect(sessionOf(answer)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await target.request(`${origin}/`, withSession(sessionOf(answer)))).status).toBe(200);
    expect((await target.request(`${origin}/v1/status`, withSession(sessionOf(answer)))).status).toBe(200);
  });

  it('marks the cookie Secure when the public base URL is https', async () => {
    const answer = await login(app({ publicBaseUrl: 'https://cldist.example.net' }), token);
    expect(answer.headers.get('set-cookie')).toMatch(/; Secure/);
  });

  it('refuses a wrong token, a forged session, the token as a cookie, and the token in the query', async () => {
    const target = app();
    expect((await login(target, 'wrong')).status).toBe(401);
    expect((await login(target, 'wrong')).headers.get('set-cookie')).toBeNull();
    expect((await target.request(`${origin}/`, withSession('forged'))).status).toBe(401);
    expect((await target.request(`${origin}/`, withSession(token))).status).toBe(401);
    const query = await target.request(`${origin}/?token=${token}`);
    expect(query.status).toBe(401);
    expect(query.headers.get('set-cookie')).toBeNull();
    expect(await query.text()).toContain('not accepted in the URL query');
  });

  it('refuses a login posted from another origin (CSRF), and accepts the public origin', async () => {
    expect((await login(app(), token, 'http://evil.example')).status).toBe(403);
    const behindProxy = app({ publicBaseUrl: 'https://cldist.example.net' });
    expect((await login(behindProxy, token, 'https://cldist.example.net')).status).toBe(303);
  });

  it('ends a session at logout and when it expires', async () => {
    let now = 1_000_000;
    const target = app({ now: () => now });
    const first = sessionOf(await login(target, token));
    const logout = await target.request(`${origin}/logout`, {
      method: 'POST',
      headers: { Cookie: `${sessionCookieName}=${first}`, Origin: origin },
    });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await target.request(`${origin}/`, withSession(first))).status).toBe(401);
    const second = sessionOf(await login(target, token));
    now += 3599_000;
    expect((await target.request(`${origin}/`, withSession(second))).status).toBe(200);
    now += 2000;
    expect((await target.request(`${origin}/`, withSession(second))).status).toBe(401);
  });

  it('sends CSP, X-Frame-Options and nosniff on every status page response', async () => {
    const target = app();
    const session = sessionOf(await login(target, token));
    const responses = [
      await target.request(`${origin}/`),
      await target.request(`${origin}/`, withSession(session)),
      await target.request(`${origin}/v1/status`),
      await target.request(`${origin}/v1/status`, { headers: { Authorization: `Bearer ${token}` } }),
      await login(target, token),
      await login(target, 'wrong'),
    ];
    for (const response of responses) {
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'/);
    }
    const page = await (await target.request(`${origin}/`)).text();
    const nonce = /script-src 'nonce-([^']+)'/.exec(
      (await target.request(`${origin}/`)).headers.get('content-security-policy') ?? '',
    );
    expect(nonce).not.toBeNull();
    expect(page).toMatch(/<script nonce="[^"]+">/);
  });
});

describe('status page while the ledger is unavailable', () => {
  it('answers 503 with Retry-After and a page that keeps reloading, not a 500', async () => {
    const target = createStatusApp({
      adminToken: token,
      getStatus: async () => {
        throw new TransientError('ledger-unavailable', 'ledger get failed: connect ECONNREFUSED');
      },
      refreshSeconds: 5,
    });
    const headers = { Authorization: `Bearer ${token}` };
    const page = await target.request(`${origin}/`, { headers });
    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toBe('5');
    expect(await page.text()).toMatch(/The ledger is not answering right now[^<]*ECONNREFUSED/);
    const json = await target.request(`${origin}/v1/status`, { headers });
    expect(json.status).toBe(503);
    expect(await json.json()).toMatchObject({ error: 'unavailable' });
  });
});

describe('status login form, bad input', () => {
  it('answers any form body with 303 only for the token, otherwise 4xx, never a cookie or a 500', async () => {
    const target = app();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 100 }))
            .map((fields) => new URLSearchParams(fields).toString()),
          fc.constantFrom(`token=${token}&token=x`, 'token=%', `token=${'a'.repeat(5000)}`, '%%%', ''),
        ),
        fc.constantFrom('application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain'),
        async (body, type) => {
          const answer = await target.request(`${origin}/login`, {
            method: 'POST',
            headers: { 'Content-Type': type, Origin: origin },
            body,
          });
          expect(answer.status).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          expect(answer.headers.get('set-cookie')).toBeNull();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('session store', () => {
  it('keeps at most `max` sessions, dropping the oldest', () => {
    const store = createSessionStore({ ttlSeconds: 60, max: 3 });
    const ids = Array.from({ length: 5 }, () => store.create());
    expect(store.size).toBe(3);
    expect(ids.map((id) => store.valid(id))).toEqual([false, false, true, true, true]);
  });

  it('rejects empty and oversized ids without looking them up', () => {
    const store = createSessionStore({ ttlSeconds: 60, max: 3 });
    expect(store.valid(undefined)).toBe(false);
    expect(store.valid('')).toBe(false);
    expect(store.valid('x'.repeat(10_000))).toBe(false);
  });
});
