import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  faults,
  type PublishedRelease,
  type SimOrigin,
  startSimOrigin,
} from '../../local/sim-origin/sim-origin.ts';
import { PermanentError, TransientError } from '../../shared/errors.ts';
import {
  conditionalGet,
  fetchSmall,
  NotFoundError,
  ObjectChangedError,
  type StreamDownloadOptions,
  streamDownload,
} from '../../shared/http/fetch.ts';

const MiB = 1 << 20;
const size = 3 * MiB + 12_345;
const folder = '/stable/amd64-usr/3510.2.8';
let origin: SimOrigin;
let release: PublishedRelease;
let imageUrl: string;

const options = (extra: Partial<StreamDownloadOptions> = {}): StreamDownloadOptions => ({
  maxBytes: 64 * MiB,
  maxResumes: 3,
  timeoutMs: 5_000,
  allowedOrigins: [origin.url],
  ...extra,
});

async function drain(body: AsyncIterable<Uint8Array>): Promise<{ sha512: string; chunks: number[] }> {
  const hash = createHash('sha512');
  const chunks: number[] = [];
  for await (const chunk of body) {
    expect(chunk).toBeInstanceOf(Uint8Array);
    hash.update(chunk);
    chunks.push(chunk.byteLength);
  }
  return { sha512: hash.digest('hex'), chunks };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) {
      return error;
    }
    throw error;
  }
  throw new Error('expected a rejection');
}

async function rawServer(listener: RequestListener): Promise<{ url: string; server: Server }> {
  const server = createServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

beforeAll(async () => {
  origin = await startSimOrigin();
  release = await origin.publishRelease({
    channel: 'stable',
    board: 'amd64-usr',
    version: '3510.2.8',
    artifacts: [
      { name: 'image.bin', size },
      { name: 'image.vmlinuz', size: 1000 },
    ],
  });
  imageUrl = `${origin.url}${folder}/image.bin`;
});

afterAll(async () => {
  await origin.close();
});

beforeEach(() => {
  origin.clearFaults();
  origin.requests.length = 0;
});

describe('streamDownload', () => {
  it('yields the object in chunks of chunkSize, reporting progress', async () => {
    const progress: number[] = [];
    const download = await streamDownload(
      imageUrl,
      options({ onProgress: (bytes, total) => progress.push(bytes, total ?? -1) }),
    );
    expect(download.contentLength).toBe(size);
    expect(download.etag).toMatch(/^"/);
    expect(download.lastModified).toMatch(/GMT$/);
    const { sha512, chunks } = await drain(download.body);
    expect(sha512).toBe(release.sha512['image.bin']);
    expect(chunks).toEqual([MiB, MiB, MiB, 12_345]);
    expect(progress.slice(-2)).toEqual([size, size]);
    expect(download.resumes).toBe(0);
  });

  it('passes the socket chunks through unchanged with chunkSize 0', async () => {
    // A socket read may be a whole MiB, so the sizes alone cannot tell: a chunk must end where the first
    // connection broke, which no regrouping into pieces of a fixed size would give.
    origin.inject(/image\.bin$/, faults.dropAfter(1_500_001));
    const download = await streamDownload(imageUrl, options({ chunkSize: 0 }));
    const { sha512, chunks } = await drain(download.body);
    expect(sha512).toBe(release.sha512['image.bin']);
    const ends = chunks.map((_, i) => chunks.slice(0, i + 1).reduce((sum, bytes) => sum + bytes, 0));
    expect(ends).toContain(1_500_001);
    expect(ends.at(-1)).toBe(size);
    expect(download.resumes).toBe(1);
  });

  it('keeps the bytes of concurrent downloads apart, read a chunk from each in turn', async () => {
    // Every plain-http socket reads into one lent buffer: a read must be copied out before the next lands.
    const downloads = await Promise.all(
      [0, 1, 2].map(() => streamDownload(imageUrl, options({ chunkSize: 0 }))),
    );
    const iterators = downloads.map((download) => download.body[Symbol.asyncIterator]());
    const hashes = downloads.map(() => createHash('sha512'));
    const done = downloads.map(() => false);
    while (done.includes(false)) {
      for (const [i, iterator] of iterators.entries()) {
        if (done[i]) continue;
        const step = await iterator.next();
        if (step.done) done[i] = true;
        else hashes[i]?.update(step.value);
      }
    }
    expect(hashes.map((hash) => hash.digest('hex'))).toEqual(
      [0, 1, 2].map(() => release.sha512['image.bin']),
    );
  });

  it('resumes a dropped connection with one Range request and yields identical bytes', async () => {
    origin.inject(/image\.bin$/, faults.dropAfter(1_500_001));
    const download = await streamDownload(imageUrl, options());
    const { sha512, chunks } = await drain(download.body);
    expect(sha512).toBe(release.sha512['image.bin']);
    expect(chunks).toEqual([MiB, MiB, MiB, 12_345]);
    expect(download.resumes).toBe(1);
    const ranged = origin.requests.filter((request) => request.range !== undefined);
    expect(ranged).toHaveLength(1);
    expect(ranged[0]).toMatchObject({ range: 'bytes=1500001-', ifRange: download.etag, status: 206 });
    expect(origin.requests).toHaveLength(2);
  });

  it('resumes several times, up to maxResumes', async () => {
    origin.inject(/image\.bin$/, faults.dropAfter(700_000), { times: 3 });
    const download = await streamDownload(imageUrl, options({ maxResumes: 3 }));
    expect((await drain(download.body)).sha512).toBe(release.sha512['image.bin']);
    expect(download.resumes).toBe(3);
    expect(origin.requests.map((request) => request.range)).toEqual([
      undefined,
      'bytes=700000-',
      'bytes=1400000-',
      'bytes=2100000-',
    ]);
  });

  it('gives up with a TransientError after maxResumes', async () => {
    origin.inject(/image\.bin$/, faults.dropAfter(100_000), { times: 10 });
    const download = await streamDownload(imageUrl, options({ maxResumes: 2 }));
    const error = await rejection(drain(download.body));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'truncated' });
    expect(error.message).toContain(imageUrl);
    expect(error.message).toMatch(/after 300000 of 3158073 bytes and 2 resume/);
    expect(origin.requests).toHaveLength(3);
  });

  it('throws ObjectChangedError when the object changed before a resume', async () => {
    origin.inject(/image\.bin$/, faults.dropAfter(2 * MiB));
    origin.inject(/image\.bin$/, faults.changeEtag(), { after: 1 });
    const download = await streamDownload(imageUrl, options());
    const received: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const chunk of download.body) {
          received.push(chunk.byteLength);
        }
      })(),
    );
    expect(error).toBeInstanceOf(ObjectChangedError);
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'object-changed' });
    expect(error.message).toContain(imageUrl);
    expect(received).toEqual([MiB, MiB]);
    expect(origin.requests[1]).toMatchObject({ range: 'bytes=2097152-', status: 200 });
  });

  it('releases the connection on cancel, and on a reader that stops early', async () => {
    origin.inject(/image\.bin$/, faults.stallAfter(MiB + MiB / 2), { times: 2 });
    const cancelled = await streamDownload(imageUrl, options());
    cancelled.cancel();
    await expect(drain(cancelled.body)).rejects.toMatchObject({ name: 'TransientError', code: 'cancelled' });
    const abandoned = await streamDownload(imageUrl, options());
    for await (const chunk of abandoned.body) {
      expect(chunk.byteLength).toBe(MiB);
      break;
    }
    await expect.poll(() => origin.requests.map((request) => request.aborted)).toEqual([true, true]);
    await expect(drain(abandoned.body)).rejects.toThrow(/can be read only once/);
  });

  it('refuses an announced length over maxBytes before reading the body', async () => {
    const error = await rejection(streamDownload(imageUrl, options({ maxBytes: 3 * MiB })));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ code: 'too-large' });
    expect(error.message).toMatch(/announces 3158073 bytes, over the limit of 3145728 bytes/);
  });

  it('refuses a stream without Content-Length that grows past maxBytes', async () => {
    const { url, server } = await rawServer((_request, response) => {
      response.writeHead(200, { etag: '"x"' });
      const timer = setInterval(() => response.write(Buffer.alloc(64 * 1024)), 1);
      response.on('close', () => clearInterval(timer));
    });
    try {
      const download = await streamDownload(`${url}/endless`, options({ maxBytes: MiB }));
      expect(download.contentLength).toBeUndefined();
      const error = await rejection(drain(download.body));
      expect(error).toMatchObject({ code: 'too-large' });
      expect(error.message).toMatch(/sent more than 1048576 bytes/);
    } finally {
      await stop(server);
    }
  });

  it('reports a truncated body as transient when there is no validator to resume with', async () => {
    const { url, server } = await rawServer((_request, response) => {
      response.writeHead(200, { 'content-length': 1000 });
      response.write(Buffer.alloc(400), () => response.socket?.destroy());
    });
    try {
      const download = await streamDownload(`${url}/short`, options());
      const error = await rejection(drain(download.body));
      expect(error).toBeInstanceOf(TransientError);
      expect(error).toMatchObject({ code: 'truncated' });
      expect(error.message).toMatch(/after 400 of 1000 bytes; no ETag to resume with/);
    } finally {
      await stop(server);
    }
  });

  it('throws ObjectChangedError when a server ignores If-Range and resumes another object', async () => {
    let calls = 0;
    const { url, server } = await rawServer((request, response) => {
      calls++;
      if (request.headers.range === undefined) {
        response.writeHead(200, { 'content-length': 1000, etag: '"a"' });
        response.write(Buffer.alloc(400), () => response.socket?.destroy());
      } else {
        response.writeHead(206, {
          'content-length': 600,
          etag: '"b"',
          'content-range': 'bytes 400-999/1000',
        });
        response.end(Buffer.alloc(600));
      }
    });
    try {
      const download = await streamDownload(`${url}/moving`, options());
      const error = await rejection(drain(download.body));
      expect(error).toBeInstanceOf(ObjectChangedError);
      expect(error.message).toMatch(/ETag "a" became "b"/);
      expect(calls).toBe(2);
    } finally {
      await stop(server);
    }
  });

  it('resumes with Last-Modified when the ETag is weak', async () => {
    const lastModified = 'Wed, 25 Nov 2026 10:00:00 GMT';
    const ifRanges: Array<string | string[] | undefined> = [];
    const { url, server } = await rawServer((request, response) => {
      const headers = { etag: 'W/"weak"', 'last-modified': lastModified };
      if (request.headers.range === undefined) {
        response.writeHead(200, { ...headers, 'content-length': 1000 });
        response.write(Buffer.alloc(400, 1), () => response.socket?.destroy());
        return;
      }
      ifRanges.push(request.headers['if-range']);
      response.writeHead(206, { ...headers, 'content-length': 600, 'content-range': 'bytes 400-999/1000' });
      response.end(Buffer.alloc(600, 2));
    });
    try {
      const download = await streamDownload(`${url}/weak`, options());
      const parts: Uint8Array[] = [];
      for await (const chunk of download.body) {
        parts.push(chunk);
      }
      const body = Buffer.concat(parts);
      expect(body.equals(Buffer.concat([Buffer.alloc(400, 1), Buffer.alloc(600, 2)]))).toBe(true);
      expect(ifRanges).toEqual([lastModified]);
    } finally {
      await stop(server);
    }
  });

  it('refuses a compressed body, which could never match its signature', async () => {
    const { url, server } = await rawServer((_request, response) => {
      response.writeHead(200, { 'content-encoding': 'gzip', 'content-length': 4 });
      response.end('abcd');
    });
    try {
      for (const attempt of [
        streamDownload(`${url}/image`, options()),
        fetchSmall(`${url}/image.sig`, { maxBytes: 100, timeoutMs: 5_000 }),
      ]) {
        const error = await rejection(attempt);
        expect(error).toBeInstanceOf(PermanentError);
        expect(error).toMatchObject({ code: 'content-encoding' });
        expect(error.message).toMatch(/Content-Encoding gzip/);
      }
    } finally {
      await stop(server);
    }
  });

  it('resumes a stalled connection after the inactivity timeout', async () => {
    origin.inject(/image\.bin$/, faults.stallAfter(MiB + 5));
    const download = await streamDownload(imageUrl, options({ timeoutMs: 300 }));
    expect((await drain(download.body)).sha512).toBe(release.sha512['image.bin']);
    expect(download.resumes).toBe(1);
    expect(origin.requests[1]?.range).toBe(`bytes=${MiB + 5}-`);
  });

  it('reports a stall as a timeout when no resume is allowed', async () => {
    origin.inject(/image\.bin$/, faults.stallAfter(10));
    const download = await streamDownload(imageUrl, options({ timeoutMs: 200, maxResumes: 0 }));
    const error = await rejection(drain(download.body));
    expect(error).toMatchObject({ name: 'TransientError', code: 'truncated' });
    expect(error.cause).toMatchObject({ code: 'timeout' });
  });

  it('times out waiting for headers with a TransientError', async () => {
    origin.inject(/image\.bin$/, faults.delay(5_000));
    const error = await rejection(streamDownload(imageUrl, options({ timeoutMs: 200 })));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'timeout' });
    expect(error.message).toContain(imageUrl);
  });

  it('follows a same-origin redirect, as for pxe.vmlinuz to image.vmlinuz', async () => {
    origin.inject(/pxe\.vmlinuz$/, faults.redirect('image.vmlinuz'));
    const download = await streamDownload(`${origin.url}${folder}/pxe.vmlinuz`, options());
    expect(download.url).toBe(`${origin.url}${folder}/image.vmlinuz`);
    expect((await drain(download.body)).sha512).toBe(release.sha512['image.vmlinuz']);
  });

  it('follows a redirect to another allowed origin', async () => {
    const mirror = await startSimOrigin();
    try {
      await mirror.publishRelease({
        channel: 'stable',
        board: 'amd64-usr',
        version: '3510.2.8',
        artifacts: [{ name: 'image.vmlinuz', size: 1000 }],
      });
      origin.inject(/image\.bin$/, faults.redirect(`${mirror.url}${folder}/image.vmlinuz`));
      const download = await streamDownload(imageUrl, options({ allowedOrigins: [origin.url, mirror.url] }));
      expect((await drain(download.body)).sha512).toBe(release.sha512['image.vmlinuz']);
      expect(mirror.requests).toHaveLength(1);
    } finally {
      await mirror.close();
    }
  });

  it('refuses a redirect to a plain-http origin that is not configured', async () => {
    const elsewhere = await rawServer((_request, response) => response.end('should never be fetched'));
    try {
      origin.inject(/image\.bin$/, faults.redirect(`${elsewhere.url}/evil`));
      let contacted = false;
      elsewhere.server.on('request', () => {
        contacted = true;
      });
      const error = await rejection(streamDownload(imageUrl, options()));
      expect(error).toBeInstanceOf(PermanentError);
      expect(error).toMatchObject({ code: 'bad-redirect' });
      expect(error.message).toContain(`redirects to ${elsewhere.url}/evil, which is neither https`);
      expect(contacted).toBe(false);
    } finally {
      await stop(elsewhere.server);
    }
  });

  it('refuses more than five redirects', async () => {
    origin.inject(/loop$/, faults.redirect('loop'), { times: 10 });
    const error = await rejection(streamDownload(`${origin.url}/loop`, options()));
    expect(error).toMatchObject({ code: 'bad-redirect' });
    expect(error.message).toMatch(/redirected more than 5 times/);
    expect(origin.requests).toHaveLength(6);
  });

  it.each([
    [404, NotFoundError, 'not-found'],
    [410, NotFoundError, 'not-found'],
    [403, PermanentError, 'http-403'],
    [500, TransientError, 'http-500'],
    [503, TransientError, 'http-503'],
    [429, TransientError, 'http-429'],
  ])('maps status %i to %o', async (status, errorClass, code) => {
    origin.inject(/image\.bin$/, faults.status(status));
    const error = await rejection(streamDownload(imageUrl, options()));
    expect(error).toBeInstanceOf(errorClass);
    expect(error).toMatchObject({ code });
    expect(error.message).toContain(imageUrl);
  });

  it('answers NotFoundError for a file the release does not have', async () => {
    const error = await rejection(streamDownload(`${origin.url}${folder}/missing.img`, options()));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toBeInstanceOf(PermanentError);
  });

  it('maps a refused connection to a TransientError naming the URL', async () => {
    const { url, server } = await rawServer(() => {});
    await stop(server);
    const error = await rejection(streamDownload(`${url}/x`, options()));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'network' });
    expect(error.message).toContain(`${url}/x`);
  });

  it('rejects a resume answered 503 and retries it within maxResumes', async () => {
    origin.inject(/image\.bin$/, faults.dropAfter(10_000));
    origin.inject(/image\.bin$/, faults.status(503), { after: 1 });
    const download = await streamDownload(imageUrl, options());
    expect((await drain(download.body)).sha512).toBe(release.sha512['image.bin']);
    expect(download.resumes).toBe(2);
    expect(origin.requests.map((request) => request.status)).toEqual([200, 503, 206]);
  });
});

describe('fetchSmall', () => {
  it('reads a signature file', async () => {
    const body = await fetchSmall(`${imageUrl}.sig`, { maxBytes: 64 * 1024, timeoutMs: 5_000 });
    expect(body.byteLength).toBeGreaterThan(50);
    expect(body.byteLength).toBeLessThan(1024);
  });

  it('refuses a file over maxBytes', async () => {
    const error = await rejection(fetchSmall(imageUrl, { maxBytes: 64 * 1024, timeoutMs: 5_000 }));
    expect(error).toMatchObject({ name: 'PermanentError', code: 'too-large' });
  });

  it('refuses a chunked body over maxBytes', async () => {
    const { url, server } = await rawServer((_request, response) => {
      response.writeHead(200);
      response.end(Buffer.alloc(100_000));
    });
    try {
      const error = await rejection(fetchSmall(`${url}/big.sig`, { maxBytes: 65_536, timeoutMs: 5_000 }));
      expect(error).toMatchObject({ code: 'too-large' });
      expect(error.message).toMatch(/sent more than 65536 bytes/);
    } finally {
      await stop(server);
    }
  });

  it('gives up on a trickling server after timeoutMs overall', async () => {
    origin.inject(/image\.vmlinuz\.sig$/, faults.stallAfter(10));
    const error = await rejection(
      fetchSmall(`${origin.url}${folder}/image.vmlinuz.sig`, { maxBytes: 65_536, timeoutMs: 200 }),
    );
    expect(error).toMatchObject({ name: 'TransientError', code: 'timeout' });
  });

  it('maps 404 to NotFoundError', async () => {
    const error = await rejection(
      fetchSmall(`${origin.url}${folder}/nothing.sig`, { maxBytes: 65_536, timeoutMs: 5_000 }),
    );
    expect(error).toBeInstanceOf(NotFoundError);
  });
});

describe('conditionalGet', () => {
  const current = () => `${origin.url}/stable/amd64-usr/current/version.txt`;
  const limits = { maxBytes: 65_536, timeoutMs: 5_000 };

  it('answers unchanged for a matching ETag or Last-Modified, and the new body after a change', async () => {
    const first = await conditionalGet(current(), limits);
    if (first.status !== 'ok') {
      throw new Error('expected a body');
    }
    expect(new TextDecoder().decode(first.body)).toContain('FLATCAR_VERSION_ID=3510.2.8\n');
    expect(await conditionalGet(current(), { ...limits, etag: first.etag })).toEqual({ status: 'unchanged' });
    expect(await conditionalGet(current(), { ...limits, lastModified: first.lastModified })).toEqual({
      status: 'unchanged',
    });
    expect(origin.requests.map((request) => request.status)).toEqual([200, 304, 304]);

    await origin.publishRelease({
      channel: 'stable',
      board: 'amd64-usr',
      version: '3510.2.9',
      artifacts: [],
    });
    try {
      const next = await conditionalGet(current(), {
        ...limits,
        etag: first.etag,
        lastModified: first.lastModified,
      });
      expect(next.status).toBe('ok');
      expect(next.status === 'ok' && new TextDecoder().decode(next.body)).toContain(
        'FLATCAR_VERSION_ID=3510.2.9\n',
      );
      expect(next.status === 'ok' && next.etag).not.toBe(first.etag);
    } finally {
      origin.setCurrent('stable', 'amd64-usr', '3510.2.8');
    }
  });

  it('maps 5xx to TransientError and a missing board to NotFoundError', async () => {
    origin.inject(/version\.txt$/, faults.status(502));
    expect(await rejection(conditionalGet(current(), limits))).toMatchObject({ code: 'http-502' });
    const missing = await rejection(
      conditionalGet(`${origin.url}/stable/arm64-usr/current/version.txt`, limits),
    );
    expect(missing).toBeInstanceOf(NotFoundError);
  });

  it('refuses a version.txt over maxBytes', async () => {
    const error = await rejection(conditionalGet(current(), { ...limits, maxBytes: 100 }));
    expect(error).toMatchObject({ code: 'too-large' });
  });
});
