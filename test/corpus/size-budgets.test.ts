import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMirrorApp } from '../../local/mirror-http.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { parseConfig } from '../../shared/config.ts';
import { validateCloudConfig } from '../../shared/instances/cloud-config.ts';
import {
  type InstanceServiceDeps,
  maxCloudConfigBytes,
  putInstanceConfig,
} from '../../shared/instances/service.ts';
import { createLocalStore } from '../../shared/store/index.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

/**
 * Inputs whose size is the attack: long mirror paths and huge YAML mappings. Each big case gets a time
 * budget as a ratio to a small case of the same shape measured in the same run, so the check holds on a
 * slow or loaded machine and still catches work that grows faster than the input (a quadratic step that
 * is 100x slower at 100x the input passes; one that is 10,000x slower does not).
 */

/** Median milliseconds of `runs` calls, after one warm-up call. */
async function medianMs(runs: number, work: () => unknown): Promise<number> {
  await work();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
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

  it.each(cases)('%s: 100x the keys costs at most 400x the time', async (_name, make) => {
    const small = make(200);
    const big = make(20_000);
    expect(big.length).toBeLessThan(1024 * 1024);
    const expected = validateCloudConfig(big);
    if (_name.startsWith('a duplicate')) expect(expected[0]?.message).toMatch(/"k0" appears again/);
    else expect(expected).toEqual([]);
    const smallMs = await medianMs(5, () => validateCloudConfig(small));
    const bigMs = await medianMs(1, () => validateCloudConfig(big));
    expect(bigMs / smallMs, `${bigMs.toFixed(0)} ms against ${smallMs.toFixed(2)} ms`).toBeLessThan(400);
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
    const put = (cloudConfig: string) =>
      putInstanceConfig({ id: 'huge', body: { cloudConfig } }, deps, parseConfig({}));
    const tooBig = `#cloud-config\n${mapping(60_000)}\n`;
    const smallMs = await medianMs(5, () => put('#cloud-config\n[').catch(() => undefined));
    const started = performance.now();
    await expect(put(tooBig)).rejects.toMatchObject({
      issues: [
        {
          path: '$.cloudConfig',
          message: expect.stringMatching(new RegExp(`at most ${maxCloudConfigBytes}`)),
        },
      ],
    });
    expect((performance.now() - started) / smallMs).toBeLessThan(50);
  });
});

describe('long mirror paths over HTTP', () => {
  let root: string;
  let server: RunningServer;
  const errors: unknown[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cldist-long-paths-'));
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

  it('spends at most 20x the time of a short 404 on a 15,000-character path', async () => {
    const shortMs = await medianMs(15, () => status('/mirror/stable/amd64-usr/9.9.9/x'));
    const longSegmentMs = await medianMs(15, () => status(`/mirror/stable/amd64-usr/${'a'.repeat(300)}`));
    const longPathMs = await medianMs(15, () => status(`/mirror/stable/amd64-usr/${'b'.repeat(15_000)}`));
    expect(longSegmentMs / shortMs).toBeLessThan(20);
    expect(longPathMs / shortMs).toBeLessThan(20);
  });
});
