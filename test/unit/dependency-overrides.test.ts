import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

type Inject = (
  handler: (
    req: unknown,
    res: { setHeader(name: string, value: string): void; end(body: string): void },
  ) => void,
  options: { url: string },
) => Promise<{ statusCode: number; cookies: Record<string, unknown>[] }>;

/**
 * package.json pins light-my-request's `cookie` to 1.x: cookie 2 declares `node >=22`, so `npm ci` on Node 20
 * warned EBADENGINE. fauxqs reaches light-my-request through fastify; these tests load it the same way and
 * run the code path that needs cookie.
 */
describe('dependency overrides', () => {
  const fromFauxqs = createRequire(new URL('../../node_modules/fauxqs/package.json', import.meta.url));
  const fromFastify = createRequire(fromFauxqs.resolve('fastify'));
  const lightMyRequestPath = fromFastify.resolve('light-my-request');
  const fromLightMyRequest = createRequire(lightMyRequestPath);

  it('gives light-my-request a cookie whose engines admit this Node', () => {
    const cookieEntry = fromLightMyRequest.resolve('cookie');
    let folder = dirname(cookieEntry);
    while (!folder.endsWith(`${join('node_modules', 'cookie')}`)) folder = dirname(folder);
    const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as {
      version: string;
      engines?: { node?: string };
    };
    expect(manifest.version).toMatch(/^1\./);
    const minimum = Number(/>=\s*(\d+)/.exec(manifest.engines?.node ?? '')?.[1]);
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(minimum);
  });

  it('lets light-my-request parse Set-Cookie with the overridden cookie', async () => {
    const inject = fromLightMyRequest(lightMyRequestPath) as Inject;
    const response = await inject(
      (_req, res) => {
        res.setHeader('set-cookie', 'session=abc; Path=/; HttpOnly');
        res.end('ok');
      },
      { url: '/' },
    );
    expect(response.statusCode).toBe(200);
    expect(response.cookies).toEqual([{ name: 'session', value: 'abc', path: '/', httpOnly: true }]);
  });
});
