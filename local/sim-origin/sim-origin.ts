import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import rangeParser from 'range-parser';
import type { ChannelConfig } from '../../shared/config.ts';
import { artifactSeed, generatedBytes } from './content.ts';
import {
  digestsText,
  generateSimKey,
  readSimKey,
  type SimKeyType,
  type SimSigningKey,
  signChunks,
} from './signing.ts';
import { type PublishedUpdate, type PublishUpdateOptions, publishUpdatePayloads } from './update-payloads.ts';

/** What can go wrong on the way from a release server; each is consumed by matching requests. */
export type Fault =
  | { kind: 'dropAfter'; bytes: number }
  | { kind: 'stallAfter'; bytes: number }
  | { kind: 'tamper'; offset: number }
  | { kind: 'status'; code: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'redirect'; to: string }
  | { kind: 'changeEtag' };

export const faults = {
  /** Destroy the socket after this many body bytes of the response. */
  dropAfter: (bytes: number): Fault => ({ kind: 'dropAfter', bytes }),
  /** Send this many body bytes, then nothing until the client gives up. */
  stallAfter: (bytes: number): Fault => ({ kind: 'stallAfter', bytes }),
  /** Flip the byte at this offset of the object (if the response covers it); the signature stays. */
  tamper: (offset: number): Fault => ({ kind: 'tamper', offset }),
  status: (code: number): Fault => ({ kind: 'status', code }),
  /** Hold the response headers back this long. */
  delay: (ms: number): Fault => ({ kind: 'delay', ms }),
  /** 302 to this URL (absolute, or a path on this origin). */
  redirect: (to: string): Fault => ({ kind: 'redirect', to }),
  /** The object is replaced (same bytes, new ETag and Last-Modified) just before this request is answered. */
  changeEtag: (): Fault => ({ kind: 'changeEtag' }),
};

export interface InjectOptions {
  /** How many matching requests the fault applies to. Default 1. */
  times?: number;
  /** Let this many matching requests through untouched first. Default 0. */
  after?: number;
}

export interface FaultHandle {
  /** Requests the fault has been applied to so far. */
  readonly applied: number;
  readonly remaining: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  /** 0 until the status is decided. */
  status: number;
  range?: string;
  ifRange?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  bytesSent: number;
  /** The connection was cut by a fault or by the client. */
  aborted: boolean;
  faults: Fault['kind'][];
}

export type ArtifactSpec = { name: string; size: number } | { name: string; content: string | Uint8Array };

export interface PublishOptions {
  channel: string;
  board: string;
  version: string;
  /** `version.txt` is written unless given here; give it to publish a malformed one. */
  artifacts: ArtifactSpec[];
  makeCurrent?: boolean;
  prefix?: 'FLATCAR' | 'COREOS';
  /** Signature creation time; defaults to now. */
  signatureDate?: Date;
  /** Fingerprint of the subkey that signs this release (a rotation); default the key's newest signing subkey. */
  signingSubkey?: string;
}

export interface PublishedRelease {
  /** Every published file except the `.sig` files: artifacts, `version.txt`, `*.DIGESTS`. */
  sha512: Record<string, string>;
  size: Record<string, number>;
  /** URL of the versioned folder, without trailing slash. */
  url: string;
}

export interface SimOriginOptions {
  /** Default `curve25519` (fast); `rsa4096` like the real keys. Ignored when `privateKeyArmored` is given. */
  keyType?: SimKeyType;
  privateKeyArmored?: string;
  /** Loopback address to listen on; default 127.0.0.1. Any 127.x.y.z works on Linux. */
  host?: string;
  /** Default 0 (any free port). A fixed one lets a URL be decided before the origin starts. */
  port?: number;
  /**
   * With a fixed port: how long to keep trying while another origin holds the address (the listening
   * socket is then a lock between test files that share one deployed origin URL). Default 0: fail at once.
   */
  waitForAddressMs?: number;
}

export interface SimOrigin {
  /** `http://127.0.0.1:PORT`, the origin to allow. */
  url: string;
  /** `http://127.0.0.1:PORT/{channel}`, for ChannelConfig.baseUrl. */
  baseUrl: string;
  channel(name: string): ChannelConfig;
  publicKeyArmored: string;
  primaryFingerprint: string;
  signingKeyFingerprint: string;
  publishRelease(options: PublishOptions): Promise<PublishedRelease>;
  /** Update payloads at the update origin's layout (`./update-payloads.ts`; `simUpdateOrigin(url)` for the config). */
  publishUpdatePayloads(options: PublishUpdateOptions): Promise<PublishedUpdate>;
  setCurrent(channel: string, board: string, version: string): void;
  /** Put or replace one file as is (no signature made), e.g. a garbage `.sig`. */
  putFile(path: string, content: string | Uint8Array): void;
  /** Remove one file, as when a release ships without it. */
  removeFile(path: string): void;
  /** Serve `target`'s bytes and validators at `path` too, as a symlink on the release server does. */
  linkFile(path: string, target: string): void;
  inject(pathPattern: RegExp | string, fault: Fault, options?: InjectOptions): FaultHandle;
  clearFaults(): void;
  requests: RequestLogEntry[];
  close(): Promise<void>;
}

/** The log is for tests and the demo's status view; a long demo run must not grow it without bound. */
const maxLoggedRequests = 10_000;

interface StoredObject {
  size: number;
  /** Present for small files; large artifacts are generated from `seed`. */
  content?: Buffer;
  seed?: string;
  baseTag: string;
  generation: number;
  modified: Date;
}

interface ActiveFault {
  pattern: RegExp;
  fault: Fault;
  remaining: number;
  skip: number;
  applied: number;
}

function toBuffer(content: string | Uint8Array): Buffer {
  return typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
}

function shortHash(input: string | Uint8Array): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 20);
}

function etagOf(object: StoredObject): string {
  return `"${object.baseTag}-${object.generation}"`;
}

/** HTTP dates have whole seconds; a change must move Last-Modified visibly. */
function nextModified(previous?: Date): Date {
  const now = Math.floor(Date.now() / 1000) * 1000;
  return new Date(previous === undefined ? now : Math.max(now, previous.getTime() + 1000));
}

function buildId(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}`;
}

function versionFileText(prefix: 'FLATCAR' | 'COREOS', version: string, date: Date): string {
  const [build = '0', branch = '0', patch = '0'] = version.split('.');
  return [
    `${prefix}_BUILD=${build}`,
    `${prefix}_BRANCH=${branch}`,
    `${prefix}_PATCH=${patch}`,
    `${prefix}_VERSION=${version}`,
    `${prefix}_VERSION_ID=${version}`,
    `${prefix}_BUILD_ID="${buildId(date)}"`,
    `${prefix}_SDK_VERSION=${build}.0.0`,
    '',
  ].join('\n');
}

function drainedOrClosed(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    function done(): void {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    }
    response.on('drain', done);
    response.on('close', done);
  });
}

function sleepUnlessClosed(ms: number, response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      response.off('close', done);
      resolve();
    }
    response.on('close', done);
  });
}

function addressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/** Listens, retrying with a bounded back-off while the address is in use, up to `waitMs`. */
async function listenOn(server: Server, host: string, port: number, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    server.listen(port, host);
    try {
      // `once` rejects when the server emits 'error' (EADDRINUSE) before 'listening'.
      await once(server, 'listening');
      return;
    } catch (cause) {
      if (!addressInUse(cause) || Date.now() >= deadline) {
        const held = addressInUse(cause) && waitMs > 0 ? ` (still in use after ${waitMs} ms)` : '';
        throw new Error(`sim origin cannot listen on ${host}:${port}${held}: ${(cause as Error).message}`, {
          cause,
        });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 500)));
  }
}

/**
 * A release server on loopback for tests, the demo, benchmarks and chaos runs: the upstream layout under
 * one path prefix per channel, real OpenPGP signatures, HTTP validators and ranges, and faults on demand.
 */
export async function startSimOrigin(options: SimOriginOptions = {}): Promise<SimOrigin> {
  const key: SimSigningKey =
    options.privateKeyArmored === undefined
      ? await generateSimKey(options.keyType)
      : await readSimKey(options.privateKeyArmored);
  const objects = new Map<string, StoredObject>();
  const current = new Map<string, { version: string; modified: Date }>();
  let active: ActiveFault[] = [];
  const requests: RequestLogEntry[] = [];

  const putObject = (path: string, object: Omit<StoredObject, 'generation' | 'modified'>): void => {
    const previous = objects.get(path);
    objects.set(path, { ...object, generation: (previous?.generation ?? 0) + 1, modified: nextModified() });
  };

  const putContent = (path: string, content: string | Uint8Array): void => {
    const buffer = toBuffer(content);
    putObject(path, { size: buffer.length, content: buffer, baseTag: shortHash(buffer) });
  };

  const currentPointer = (path: string): { target: string; modified?: Date } => {
    const match = /^\/([^/]+)\/([^/]+)\/current\/([^/]+)$/.exec(path);
    if (!match) {
      return { target: path };
    }
    const [, channel, board, file] = match;
    const pointer = current.get(`/${channel}/${board}`);
    return pointer
      ? { target: `/${channel}/${board}/${pointer.version}/${file}`, modified: pointer.modified }
      : { target: '' };
  };

  const resolve = (path: string): StoredObject | undefined => {
    const { target, modified } = currentPointer(path);
    const object = objects.get(target);
    if (!object || modified === undefined || object.modified > modified) {
      return object;
    }
    return { ...object, modified };
  };

  const takeFaults = (path: string): Fault[] => {
    const taken: Fault[] = [];
    for (const entry of active) {
      if (entry.remaining <= 0 || !entry.pattern.test(path)) {
        continue;
      }
      if (entry.skip > 0) {
        entry.skip--;
        continue;
      }
      entry.remaining--;
      entry.applied++;
      taken.push(entry.fault);
    }
    active = active.filter((entry) => entry.remaining > 0);
    return taken;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? '/', 'http://sim.invalid').pathname;
    const method = request.method ?? 'GET';
    const entry: RequestLogEntry = { method, path, status: 0, bytesSent: 0, aborted: false, faults: [] };
    const headerValue = (name: string): string | undefined => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const range = headerValue('range');
    const ifRange = headerValue('if-range');
    const ifNoneMatch = headerValue('if-none-match');
    const ifModifiedSince = headerValue('if-modified-since');
    if (range !== undefined) entry.range = range;
    if (ifRange !== undefined) entry.ifRange = ifRange;
    if (ifNoneMatch !== undefined) entry.ifNoneMatch = ifNoneMatch;
    if (ifModifiedSince !== undefined) entry.ifModifiedSince = ifModifiedSince;
    requests.push(entry);
    if (requests.length > maxLoggedRequests) {
      requests.splice(0, requests.length - maxLoggedRequests);
    }
    response.on('close', () => {
      if (!response.writableFinished) {
        entry.aborted = true;
      }
    });
    const reply = (status: number, headers: Record<string, string | number> = {}, text = ''): void => {
      entry.status = status;
      const body = method === 'HEAD' ? '' : text;
      response.writeHead(status, { 'content-length': Buffer.byteLength(text), ...headers });
      response.end(body);
    };

    if (method !== 'GET' && method !== 'HEAD') {
      reply(405, { allow: 'GET, HEAD' }, 'method not allowed\n');
      return;
    }
    const taken = takeFaults(path);
    entry.faults = taken.map((fault) => fault.kind);
    let dropAt: number | undefined;
    let stallAt: number | undefined;
    const tamperAt: number[] = [];
    for (const fault of taken) {
      switch (fault.kind) {
        case 'delay':
          await sleepUnlessClosed(fault.ms, response);
          if (response.destroyed) {
            return;
          }
          break;
        case 'changeEtag': {
          const object = objects.get(currentPointer(path).target);
          if (object) {
            object.generation++;
            object.modified = nextModified(object.modified);
          }
          break;
        }
        case 'status':
          reply(fault.code, { 'content-type': 'text/plain' }, `injected status ${fault.code}\n`);
          return;
        case 'redirect':
          reply(302, { location: fault.to }, '');
          return;
        case 'dropAfter':
          dropAt = Math.min(dropAt ?? fault.bytes, fault.bytes);
          break;
        case 'stallAfter':
          stallAt = Math.min(stallAt ?? fault.bytes, fault.bytes);
          break;
        case 'tamper':
          tamperAt.push(fault.offset);
          break;
      }
    }

    const object = resolve(path);
    if (!object) {
      reply(404, { 'content-type': 'text/plain' }, `not found: ${path}\n`);
      return;
    }
    const etag = etagOf(object);
    const lastModified = object.modified.toUTCString();
    const validators = { etag, 'last-modified': lastModified };
    if (ifNoneMatch !== undefined) {
      const tags = ifNoneMatch.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
      if (tags.includes(etag) || tags.includes('*')) {
        entry.status = 304;
        response.writeHead(304, validators).end();
        return;
      }
    } else if (ifModifiedSince !== undefined) {
      const since = Date.parse(ifModifiedSince);
      if (!Number.isNaN(since) && object.modified.getTime() <= since) {
        entry.status = 304;
        response.writeHead(304, validators).end();
        return;
      }
    }

    let start = 0;
    let end = object.size;
    let status = 200;
    const headers: Record<string, string | number> = {
      ...validators,
      'accept-ranges': 'bytes',
      'content-type':
        path.endsWith('.txt') || path.endsWith('.DIGESTS') ? 'text/plain' : 'application/octet-stream',
    };
    const rangeApplies =
      range !== undefined && (ifRange === undefined || ifRange === etag || ifRange === lastModified);
    if (rangeApplies) {
      // A strict origin: anything but one satisfiable byte range is refused, so a client's bad resume shows.
      const parsed = rangeParser(object.size, range);
      const only = parsed === -1 || parsed === -2 || parsed.type !== 'bytes' ? undefined : parsed;
      const first = only?.length === 1 ? only[0] : undefined;
      if (first === undefined) {
        reply(416, { ...headers, 'content-range': `bytes */${object.size}` }, '');
        return;
      }
      start = first.start;
      end = first.end + 1;
      status = 206;
      headers['content-range'] = `bytes ${start}-${end - 1}/${object.size}`;
    }
    headers['content-length'] = end - start;
    entry.status = status;
    response.writeHead(status, headers);
    if (method === 'HEAD') {
      response.end();
      return;
    }

    const chunks: Iterable<Buffer> = object.content
      ? [object.content.subarray(start, end)]
      : generatedBytes(object.seed ?? '', start, end);
    let position = start;
    for (const original of chunks) {
      let chunk = original;
      for (const offset of tamperAt) {
        if (offset >= position && offset < position + chunk.length) {
          if (object.content) {
            chunk = Buffer.from(chunk);
          }
          chunk[offset - position] = (chunk[offset - position] ?? 0) ^ 0xff;
        }
      }
      position += chunk.length;
      const cut = dropAt ?? stallAt;
      if (cut !== undefined && entry.bytesSent + chunk.length >= cut) {
        const piece = chunk.subarray(0, cut - entry.bytesSent);
        entry.bytesSent += piece.length;
        await new Promise<void>((done) => response.write(piece, () => done()));
        if (dropAt !== undefined) {
          entry.aborted = true;
          response.socket?.destroy();
        } else if (!response.destroyed) {
          await once(response, 'close');
        }
        return;
      }
      entry.bytesSent += chunk.length;
      if (!response.write(chunk)) {
        await drainedOrClosed(response);
      }
      if (response.destroyed) {
        return;
      }
    }
    response.end();
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
  const host = options.host ?? '127.0.0.1';
  await listenOn(server, host, options.port ?? 0, options.waitForAddressMs ?? 0);
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;

  const publishFile = async (
    folder: string,
    name: string,
    object: Omit<StoredObject, 'generation' | 'modified' | 'baseTag' | 'size'>,
    chunks: () => Iterable<Uint8Array>,
    date: Date | undefined,
    published: PublishedRelease,
    signingSubkey?: string,
  ): Promise<void> => {
    const signed = await signChunks(key, chunks(), date, signingSubkey);
    putObject(`${folder}/${name}`, {
      ...object,
      size: signed.size,
      baseTag: shortHash(object.content ?? `${object.seed}\u0000${signed.sha512}`),
    });
    putContent(`${folder}/${name}.sig`, signed.signature);
    published.sha512[name] = signed.sha512;
    published.size[name] = signed.size;
    if (!name.endsWith('.DIGESTS')) {
      const digests = Buffer.from(digestsText(name, signed));
      await publishFile(
        folder,
        `${name}.DIGESTS`,
        { content: digests },
        () => [digests],
        date,
        published,
        signingSubkey,
      );
    }
  };

  const checkSegment = (kind: string, value: string): void => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(value) || value.includes('..')) {
      throw new Error(`sim origin: ${kind} ${JSON.stringify(value)} is not a plain name`);
    }
  };

  const origin: SimOrigin = {
    url,
    baseUrl: `${url}/{channel}`,
    channel: (name) => ({ name, baseUrl: `${url}/{channel}` }),
    publicKeyArmored: key.publicKeyArmored,
    primaryFingerprint: key.primaryFingerprint,
    signingKeyFingerprint: key.signingKeyFingerprint,
    async publishRelease(release) {
      const { channel, board, version } = release;
      for (const [kind, value] of [
        ['channel', channel],
        ['board', board],
        ['version', version],
        ...release.artifacts.map((artifact) => ['artifact', artifact.name]),
      ] as const) {
        checkSegment(kind, value);
      }
      const folder = `/${channel}/${board}/${version}`;
      const published: PublishedRelease = { sha512: {}, size: {}, url: `${url}${folder}` };
      const specs: ArtifactSpec[] = [...release.artifacts];
      if (!specs.some((artifact) => artifact.name === 'version.txt')) {
        specs.unshift({
          name: 'version.txt',
          content: versionFileText(release.prefix ?? 'FLATCAR', version, release.signatureDate ?? new Date()),
        });
      }
      for (const spec of specs) {
        if ('content' in spec) {
          const content = toBuffer(spec.content);
          await publishFile(
            folder,
            spec.name,
            { content },
            () => [content],
            release.signatureDate,
            published,
            release.signingSubkey,
          );
        } else {
          const seed = artifactSeed(spec.name, version);
          await publishFile(
            folder,
            spec.name,
            { seed },
            () => generatedBytes(seed, 0, spec.size),
            release.signatureDate,
            published,
            release.signingSubkey,
          );
        }
      }
      if (release.makeCurrent ?? true) {
        origin.setCurrent(channel, board, version);
      }
      return published;
    },
    publishUpdatePayloads: (update) =>
      publishUpdatePayloads(
        {
          url,
          putFile: putContent,
          signDetached: async (bytes) => (await signChunks(key, [bytes])).signature,
        },
        update,
      ),
    setCurrent(channel, board, version) {
      const previous = current.get(`/${channel}/${board}`);
      current.set(`/${channel}/${board}`, { version, modified: nextModified(previous?.modified) });
    },
    putFile(path, content) {
      putContent(path, content);
    },
    removeFile(path) {
      objects.delete(path);
    },
    linkFile(path, target) {
      const object = objects.get(target);
      if (!object) {
        throw new Error(`sim origin: cannot link ${path} to ${target}, which does not exist`);
      }
      objects.set(path, object);
    },
    inject(pathPattern, fault, injectOptions = {}) {
      const entry: ActiveFault = {
        pattern: typeof pathPattern === 'string' ? new RegExp(pathPattern) : pathPattern,
        fault,
        remaining: injectOptions.times ?? 1,
        skip: injectOptions.after ?? 0,
        applied: 0,
      };
      active.push(entry);
      return {
        get applied() {
          return entry.applied;
        },
        get remaining() {
          return entry.remaining;
        },
      };
    },
    clearFaults() {
      active = [];
    },
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
  return origin;
}

/** What a keyring needs to trust the sim origin: pass to `loadKeyring(armoredKeys, trustedFingerprints)`. */
export function simTrust(origin: Pick<SimOrigin, 'publicKeyArmored' | 'primaryFingerprint'>): {
  armoredKeys: string[];
  trustedFingerprints: string[];
} {
  return { armoredKeys: [origin.publicKeyArmored], trustedFingerprints: [origin.primaryFingerprint] };
}
