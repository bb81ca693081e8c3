import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMirrorApp, mirrorKey, parseRange } from '../../local/mirror-http.ts';
import { createLocalStore } from '../../shared/store/index.ts';
import type { ObjectStore } from '../../shared/store/types.ts';

describe('parseRange', () => {
  it('reads the forms resuming downloaders send', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-1000', 100)).toEqual({ start: 50, end: 99 });
  });

  it('answers 416 for ranges past the end and ignores what it does not support', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
  });

  it('refuses an invalid range with 416, which RFC 9110 section 14.2 allows as well as ignoring it', () => {
    expect(parseRange('bytes=9-2', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
  });

  it('ignores a malformed header and serves the whole object', () => {
    expect(parseRange('bytes=abc', 100)).toBeUndefined();
    expect(parseRange('bytes=1-2-3', 100)).toBeUndefined();
    expect(parseRange('nonsense', 100)).toBeUndefined();
  });
});

describe('mirrorKey', () => {
  it('accepts upstream paths and refuses escapes and the staging folder', () => {
    expect(mirrorKey('stable/amd64-usr/current/version.txt')).toBe('stable/amd64-usr/current/version.txt');
    expect(mirrorKey('stable/amd64-usr/../../etc/passwd')).toBeUndefined();
    expect(mirrorKey('.staging/abc')).toBeUndefined();
    expect(mirrorKey('stable//x')).toBeUndefined();
    expect(mirrorKey('stable')).toBeUndefined();
  });

  it('refuses what the store could not hold: a segment over 255 bytes, a key over 1024', () => {
    expect(mirrorKey(`stable/amd64-usr/${'a'.repeat(255)}`)).toBeDefined();
    expect(mirrorKey(`stable/amd64-usr/${'a'.repeat(256)}`)).toBeUndefined();
    expect(mirrorKey(`stable/${Array.from({ length: 120 }, () => 'abcdefgh').join('/')}`)).toBeUndefined();
  });
});

describe('mirror HTTP errors', () => {
  it('logs an unexpected store error as one JSON line without absolute paths, and answers a bare 500', async () => {
    const failing = {
      head: () =>
        Promise.reject(
          Object.assign(
            new Error("EIO: i/o error, open '/srv/secret-data-dir/mirror/stable/x'\n    at open"),
            {
              code: 'EIO',
            },
          ),
        ),
    } as unknown as ObjectStore;
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const res = await createMirrorApp(failing).request('/mirror/stable/amd64-usr/1.0.0/x');
      expect(res.status).toBe(500);
      expect(await res.text()).toBe('internal error\n');
    } finally {
      write.mockRestore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    expect(lines[0]?.trimEnd()).not.toContain('\n');
    const record = JSON.parse(lines[0] ?? '');
    expect(record).toMatchObject({ level: 'error', event: 'mirror.internal_error' });
    expect(record.cause).toContain('EIO');
    expect(record.cause).not.toContain('/srv/secret-data-dir');
  });
});

describe('mirror HTTP over the local store', () => {
  let root: string;
  const body = new Uint8Array(Array.from({ length: 1000 }, (_, i) => i % 251));
  let app: ReturnType<typeof createMirrorApp>;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cldist-mirror-http-'));
    const store = createLocalStore(root);
    await store.put('stable/amd64-usr/1.2.3/image.bin', body);
    await store.put('stable/amd64-usr/current/version.txt', 'FLATCAR_VERSION_ID=1.2.3\n');
    app = createMirrorApp(store);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('serves a whole object with its length and range support', async () => {
    const res = await app.request('/mirror/stable/amd64-usr/1.2.3/image.bin');
    expect(res.status).toBe(200);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-length')).toBe('1000');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(body);
  });

  it('serves a byte range as 206 with Content-Range', async () => {
    const res = await app.request('/mirror/stable/amd64-usr/1.2.3/image.bin', {
      headers: { Range: 'bytes=100-199' },
    });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(body.slice(100, 200));
  });

  it('answers 416 for a range past the end', async () => {
    const res = await app.request('/mirror/stable/amd64-usr/1.2.3/image.bin', {
      headers: { Range: 'bytes=5000-' },
    });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await app.request('/mirror/stable/amd64-usr/current/version.txt', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('25');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('');
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await app.request('/mirror/stable/amd64-usr/current/version.txt');
    const etag = first.headers.get('etag') ?? '';
    expect(etag).not.toBe('');
    const again = await app.request('/mirror/stable/amd64-usr/current/version.txt', {
      headers: { 'If-None-Match': etag },
    });
    expect(again.status).toBe(304);
  });

  it('answers 404 for unknown objects and for paths that try to escape', async () => {
    expect((await app.request('/mirror/stable/amd64-usr/9.9.9/image.bin')).status).toBe(404);
    expect((await app.request('/mirror/stable/amd64-usr/%2e%2e/%2e%2e/x')).status).toBe(404);
    expect((await app.request('/mirror/.staging/x/y')).status).toBe(404);
  });
});
