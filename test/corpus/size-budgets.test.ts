import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../shared/api/node-server.ts';
import type { InstanceServiceDeps } from '../../shared/instances/service.ts';
import {
  type OperationCount,
  type OperationCounter,
  startOperationCounter,
} from '../support/operation-count.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

/**
 * Inputs whose size is the attack: long mirror paths and huge YAML mappings. Each big case gets a budget of
 * work as a ratio to a small case of the same shape, both counted (JavaScript function calls and blocks run,
 * `test/support/operation-count.ts`) in the code under test and the packages it calls, so the check is
 * exact on a slow or loaded machine and still catches work that grows faster than the input (a step that
 * costs 100x the operations at 100x the input passes; a quadratic one, at 10,000x, does not). Work inside
 * the engine's built-ins (a regular expression's own scan) counts as one operation, so the patterns these
 * paths meet are kept anchored and free of nested repetition.
 *
 * The counter only sees functions compiled while it runs, so the code under test is imported after it starts.
 */

let counter: OperationCounter;
let validateCloudConfig: typeof import('../../shared/instances/cloud-config.ts').validateCloudConfig;
let service: typeof import('../../shared/instances/service.ts');
let parseConfig: typeof import('../../shared/config.ts').parseConfig;

beforeAll(async () => {
  counter = await startOperationCounter();
  ({ validateCloudConfig } = await import('../../shared/instances/cloud-config.ts'));
  service = await import('../../shared/instances/service.ts');
  ({ parseConfig } = await import('../../shared/config.ts'));
});

afterAll(async () => {
  await counter.stop();
});

/** The work of the product and the packages it calls, leaving out the test runner's own. */
function productWork(count: OperationCount): number {
  return ['/shared/', '/local/', '/node_modules/yaml/', '/node_modules/hono/', '/node_modules/@hono/']
    .map((part) => count.in(part))
    .reduce((a, b) => a + b, 0);
}

/** Operations of one call, after one warm-up call (the first call also pays for lazy set-up). */
async function operationsOf(work: () => unknown): Promise<number> {
  await work();
  const counted = productWork(await counter.count(work));
  expect(counted, 'the operation counter saw none of the work: it is not counting').toBeGreaterThan(0);
  return counted;
}

function mapping(keys: number, indent = ''): string {
  const lines: string[] = [];
  for (let i = 0; i < keys; i++) lines.push(`${indent}k${i}: v`);
  return lines.join('\n');
}

describe('huge YAML mappings in a cloud-config', () => {
  const cases: [string, (scale: number) => string][] = [
    ['one flat mapping', (n) => `#cloud-config\n${mapping(n)}\n`],
    ['one nested mapping', (n) => `#cloud-config\nnested:\n  deeper:\n${mapping(n, '    ')}\n`],
    [
      'many small mappings',
      (n) =>
        `#cloud-config\nusers:\n${Array.from({ length: n / 4 }, (_, i) => `  - name: u${i}\n    uid: ${i}\n    shell: /bin/sh\n    gecos: x`).join('\n')}\n`,
    ],
    ['a duplicate at the very end', (n) => `#cloud-config\n${mapping(n)}\nk0: again\n`],
  ];

  it.each(cases)('%s: 100x the keys costs at most 150x the operations', async (_name, make) => {
    const small = make(200);
    const big = make(20_000);
    expect(big.length).toBeLessThan(1024 * 1024);
    const expected = validateCloudConfig(big);
    if (_name.startsWith('a duplicate')) expect(expected[0]?.message).toMatch(/"k0" appears again/);
    else expect(expected).toEqual([]);
    const smallOps = await operationsOf(() => validateCloudConfig(small));
    const bigOps = await operationsOf(() => validateCloudConfig(big));
    expect(bigOps / smallOps, `${bigOps} operations against ${smallOps}`).toBeLessThan(150);
  });
});

describe('a huge cloud-config through the PUT core', () => {
  it('is refused by its size before any YAML is parsed, naming the limit', async () => {
    const untouched = new Proxy({}, { get: () => () => Promise.reject(new Error('not to be touched')) });
    const deps = {
      instances: untouched,
      bodies: untouched,
      clock: () => new Date(),
    } as unknown as InstanceServiceDeps;
    const config = parseConfig({});
    const put = (cloudConfig: string) =>
      service.putInstanceConfig({ id: 'huge', body: { cloudConfig } }, deps, config);
    const tooBig = `#cloud-config\n${mapping(60_000)}\n`;
    await expect(put(tooBig)).rejects.toMatchObject({
      issues: [
        {
          path: '$.cloudConfig',
          message: expect.stringMatching(new RegExp(`at most ${service.maxCloudConfigBytes}`)),
        },
      ],
    });
    const smallOps = await operationsOf(() => put('#cloud-config\n[').catch(() => undefined));
    const refused = await counter.count(() => put(tooBig).catch(() => undefined));
    expect(refused.in('/node_modules/yaml/'), 'YAML was parsed').toBe(0);
    expect(productWork(refused) / smallOps).toBeLessThan(50);
  });
});

describe('long mirror paths over HTTP', () => {
  let root: string;
  let server: RunningServer;
  const errors: unknown[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cldist-long-paths-'));
    const { createLocalStore } = await import('../../shared/store/index.ts');
    const { createMirrorApp } = await import('../../local/mirror-http.ts');
    const { serveNode } = await import('../../shared/api/node-server.ts');
    const store = createLocalStore(root);
    await store.put('stable/amd64-usr/1.0.0/version.txt', 'FLATCAR_VERSION=1.0.0\n');
    server = await serveNode(createMirrorApp(store, { onError: (error) => errors.push(error) }), {
      host: '127.0.0.1',
      port: 0,
    });
  });

  afterAll(async () => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  });

  const status = async (path: string) => {
    const response = await fetch(`${server.url}${path}`);
    await response.arrayBuffer();
    return response.status;
  };

  it('answers 404 or 414 to the red-team paths, never an error', async () => {
    expect(await status(`/mirror/stable/amd64-usr/${'a'.repeat(300)}`)).toBe(404);
    expect(await status(`/mirror/stable/amd64-usr/${'a'.repeat(255)}/x`)).toBe(404);
    expect(await status(`/mirror/stable/${'abcdefg/'.repeat(140)}x`)).toBe(404);
    expect(await status(`/mirror/stable/amd64-usr/${'b'.repeat(15_000)}`)).toBe(414);
    expect(await status(`/mirror/${'c/'.repeat(7_000)}d`)).toBe(414);
    expect(await status('/mirror/stable/amd64-usr/1.0.0/version.txt')).toBe(200);
    expect(errors).toEqual([]);
  });

  it('answers any long path with 404 or 414, never an error', async () => {
    const segment = fc
      .tuple(
        fc.constantFrom('a', 'Z', '9'),
        fc.integer({ min: 0, max: 600 }),
        fc.stringMatching(/^[\w.+-]{0,8}$/),
      )
      .map(([first, length, rest]) => `${first}${'x'.repeat(length)}${rest}`);
    // At most 20 segments of about 600 characters: under Node's 16 KiB limit on the request head.
    const path = fc.array(segment, { minLength: 1, maxLength: 20 }).map((s) => `/mirror/${s.join('/')}`);
    await runCorpus('long mirror paths', path, async (p) => {
      expect([404, 414]).toContain(await status(p));
    });
    expect(errors).toEqual([]);
    reportTallies('size-budgets');
  });

  it('spends at most 4 operations a character more than a short 404, linearly, up to 15,000 characters', async () => {
    // The request's fixed cost is mostly native (sockets, HTTP parsing), which the counter does not see, so
    // the budget is per character of path: a scan per character passes, a quadratic step does not.
    const shortOps = await operationsOf(() => status('/mirror/stable/amd64-usr/9.9.9/x'));
    const perCharacter = async (path: string, extra: number) =>
      ((await operationsOf(() => status(path))) - shortOps) / extra;
    const longSegment = await perCharacter(`/mirror/stable/amd64-usr/${'a'.repeat(300)}`, 300);
    const halfPath = await perCharacter(`/mirror/stable/amd64-usr/${'b'.repeat(7_500)}`, 7_500);
    const longPath = await perCharacter(`/mirror/stable/amd64-usr/${'b'.repeat(15_000)}`, 15_000);
    expect(longSegment).toBeLessThan(4);
    expect(longPath).toBeLessThan(4);
    expect(longPath / halfPath, 'doubling the path more than doubled its extra work').toBeLessThan(1.25);
  });
});
