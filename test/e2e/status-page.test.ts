import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faults, type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../../shared/config.ts';
import {
  bigArtifact,
  board,
  publish,
  type Started,
  serveFor,
  simConfig,
  smallArtifact,
  tempDir,
  waitFor,
} from './serve-harness.ts';

/** Configured as optional, never published by the sim origin: the upstream "shipped without it" case. */
const absentArtifact = 'flatcar_production_pxe_image.cpio.gz';

const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('status page in headless Chromium', () => {
  let sim: SimOrigin;
  let dir: string;
  let started: Started;
  let browser: Browser;

  beforeAll(async () => {
    sim = await startSimOrigin();
    dir = await tempDir('status-page');
    await publish(sim, 'stable', '4081.2.0');
    await publish(sim, 'beta', '4152.1.0');
    sim.inject(`/beta/${board}/4152.1.0/${smallArtifact}$`, faults.tamper(1000), { times: 1 });
    const config = await simConfig(sim, dir, ['stable', 'beta'], {
      artifacts: [
        { name: 'version.txt' },
        { name: bigArtifact },
        { name: smallArtifact },
        { name: absentArtifact, required: false },
      ],
    });
    started = await serveFor(config, join(dir, 'data'));
    await waitFor(async () => {
      const status = await started.handle.status();
      const stable = status.channels.find((c) => c.channel === 'stable');
      const beta = status.channels.find((c) => c.channel === 'beta');
      return (
        stable?.releases[0]?.state === 'mirrored' &&
        beta?.releases[0]?.artifacts.every((a) => a.state !== 'pending')
      );
    }, 'stable mirrored and beta settled');
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
  });

  afterAll(async () => {
    await browser?.close();
    await started?.handle.close();
    await sim?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('asks for the admin token, then shows channels, versions and artifact states', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await page.goto(`${started.handle.url}/`);
    expect(first?.status()).toBe(401);
    await page.getByLabel(/admin token/i).fill('not-the-token');
    await page.getByRole('button', { name: 'Open' }).click();
    await expect.poll(() => page.textContent('body')).toContain('That token is not the admin token');

    await page.getByLabel(/admin token/i).fill(started.handle.adminToken);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.waitForURL(`${started.handle.url}/`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('cldist');

    const stable = page.locator('section.channel[data-channel="stable"]');
    expect(await stable.locator('h2').textContent()).toContain('stable');
    expect(await stable.locator('.latest-upstream').textContent()).toBe('4081.2.0');
    expect(await stable.locator('.current-mirrored').textContent()).toBe('4081.2.0');
    expect(await stable.locator('.versions-mirrored').textContent()).toBe('4081.2.0');
    const stableRelease = stable.locator('details.release[data-version="4081.2.0"]');
    await stableRelease.locator('summary').click();
    const rows = stableRelease.locator('tr.artifact');
    expect(await rows.count()).toBe(4);
    const absent = stableRelease.locator(`tr.artifact[data-artifact="${absentArtifact}"]`);
    expect(await absent.locator('.state').textContent()).toBe('missing');
    expect(await absent.textContent()).toContain('(optional)');
    for (const name of ['version.txt', bigArtifact, smallArtifact]) {
      const row = stableRelease.locator(`tr.artifact[data-artifact="${name}"]`);
      expect(await row.locator('.state').textContent()).toBe('verified');
      expect(await row.locator('code[title]').getAttribute('title')).toBe(sim.signingKeyFingerprint);
      expect(await row.isVisible()).toBe(true);
    }
    expect(
      await stableRelease.locator(`tr.artifact[data-artifact="${bigArtifact}"] td.num`).textContent(),
    ).toBe('3.0 MiB');

    const beta = page.locator('section.channel[data-channel="beta"]');
    expect(await beta.locator('.versions-mirrored').textContent()).toBe('none yet');
    const tampered = beta.locator(`tr.artifact[data-artifact="${smallArtifact}"]`);
    expect(await tampered.isVisible()).toBe(true);
    expect(await tampered.locator('.state').textContent()).toBe('failed');
    expect(await tampered.locator('.error').textContent()).toMatch(/tampered/);

    const keyExpiry = page.locator('table.keys td.key-expiry').first();
    expect(await keyExpiry.textContent()).toMatch(/never|\d{4}-\d{2}-\d{2}/);
    const events = await page.locator('ol.events li').allTextContents();
    expect(
      events.some((e) => e.includes('release.mirrored') && e.includes('stable/amd64-usr 4081.2.0')),
    ).toBe(true);
    expect(events.some((e) => e.includes('artifact.verification_failed') && e.includes(smallArtifact))).toBe(
      true,
    );

    expect(await page.locator('meta[http-equiv="refresh"]').getAttribute('content')).toBe('5');
    const output = join(projectRoot, 'test-output');
    await mkdir(output, { recursive: true });
    await page.screenshot({ path: join(output, 'status-page.png'), fullPage: true });
    await context.close();
  });

  it('signs in from a /#token= link without the token in any URL, history entry or cookie', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    const token = started.handle.adminToken;
    const landing = await page.goto(`${started.handle.url}/#token=${encodeURIComponent(token)}`);
    expect(landing?.headers()['x-frame-options']).toBe('DENY');
    expect(landing?.headers()['x-content-type-options']).toBe('nosniff');
    expect(landing?.headers()['content-security-policy']).toMatch(/script-src 'nonce-[^']+'/);
    await page.waitForURL(`${started.handle.url}/`);
    await page.locator('section.channel').first().waitFor();
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.some((url) => url.includes(token))).toBe(false);
    expect(page.url()).toBe(`${started.handle.url}/`);
    expect(await page.evaluate(() => history.length)).toBeLessThanOrEqual(2);
    // The entry the link opened was rewritten (or replaced) before the form was posted: going back shows no token.
    await page.goBack();
    expect(page.url()).not.toContain(token);
    await page.goForward();
    expect(page.url()).toBe(`${started.handle.url}/`);
    await page.locator('section.channel').first().waitFor();
    const [cookie, ...others] = await context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({
      name: 'cldist_session',
      httpOnly: true,
      sameSite: 'Strict',
      secure: false,
    });
    expect(cookie?.value).not.toContain(token);
    expect(cookie?.expires).toBeGreaterThan(Date.now() / 1000);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${started.handle.url}/`);
    expect(await page.getByLabel(/admin token/i).isVisible()).toBe(true);
    const afterLogout = await fetch(`${started.handle.url}/v1/status`, {
      headers: { Cookie: `cldist_session=${cookie?.value ?? ''}` },
    });
    expect(afterLogout.status).toBe(401);
    await context.close();
  });

  it('does not accept the token in the query string', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const answer = await page.goto(
      `${started.handle.url}/?token=${encodeURIComponent(started.handle.adminToken)}`,
    );
    expect(answer?.status()).toBe(401);
    expect(await page.textContent('body')).toContain('not accepted in the URL query');
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it('shows a new upstream version after the page refreshes itself', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${started.handle.url}/#token=${encodeURIComponent(started.handle.adminToken)}`);
    await page.waitForURL(`${started.handle.url}/`);
    await page.locator('section.channel').first().waitFor();
    await publish(sim, 'stable', '4081.2.1');
    await started.handle.pollNow();
    const stable = page.locator('section.channel[data-channel="stable"]');
    await expect
      .poll(() => stable.locator('.current-mirrored').textContent(), { timeout: 30_000, interval: 500 })
      .toBe('4081.2.1');
    expect(await stable.locator('.latest-upstream').textContent()).toBe('4081.2.1');
    expect(await stable.locator('.versions-mirrored').textContent()).toBe('4081.2.1, 4081.2.0');
    await context.close();
  });
});
