import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SourceInput } from '../../shared/config-sources.ts';
import { type Fault, type FaultHandle, FaultList, type InjectOptions } from './faults.ts';
import { listenOn } from './listen.ts';
import { ObjectStore } from './objects.ts';
import {
  type ArtifactSpec,
  checkSegment,
  type PublishedRelease,
  type PublishOptions,
  ReleaseWriter,
  versionFileText,
} from './publish.ts';
import { handleRequest, type OriginState, type RequestLogEntry } from './serve.ts';
import { generateSimKey, readSimKey, type SimKeyType, type SimSigningKey, signChunks } from './signing.ts';
import { type PublishedUpdate, type PublishUpdateOptions, publishUpdatePayloads } from './update-payloads.ts';

export { type Fault, type FaultHandle, faults, type InjectOptions } from './faults.ts';
export type { ArtifactSpec, PublishedRelease, PublishOptions } from './publish.ts';
export type { RequestLogEntry } from './serve.ts';

/**
 * Which upstream the origin plays: Flatcar (`FLATCAR_VERSION_ID`, `flatcar_production_*`) or CoreOS
 * (`COREOS_VERSION_ID`, `coreos_production_*`). Both lay releases out as `{channel}/{board}/{version}/`.
 */
export type SimOriginStyle = 'flatcar' | 'coreos';

export interface SimOriginOptions {
  /** Default `curve25519` (fast); `rsa4096` like the real keys. Ignored when `privateKeyArmored` is given. */
  keyType?: SimKeyType;
  privateKeyArmored?: string;
  /** Default `flatcar`. */
  style?: SimOriginStyle;
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

/** A channel of `SimOrigin.source`: boards default to amd64-usr, as in the config. */
export interface SimChannel {
  name: string;
  boards?: string[];
  upstream?: string;
  current?: string;
}

export interface SimOrigin {
  /** `http://127.0.0.1:PORT`, the origin to allow. */
  url: string;
  /** `http://127.0.0.1:PORT/{channel}`, for a source's or channel's baseUrl. */
  baseUrl: string;
  style: SimOriginStyle;
  /** What `{prefix}` in an artifact name stands for on this origin: `flatcar` or `coreos`. */
  imagePrefix: string;
  /** A channel of the old top-level `channels` list, served by this origin. */
  channel(name: string): { name: string; baseUrl: string };
  /** A config source served by this origin, in its style, trusting only this origin's key. */
  source(name: string, channels: SimChannel[]): SourceInput & { keys: string[] };
  publicKeyArmored: string;
  primaryFingerprint: string;
  signingKeyFingerprint: string;
  publishRelease(options: PublishOptions): Promise<PublishedRelease>;
  /** Update payloads at the update origin's layout (`./update-payloads.ts`; `simUpdateOrigin(url)` for the config). */
  publishUpdatePayloads(options: PublishUpdateOptions): Promise<PublishedUpdate>;
  /** Points `{channel}/{board}/{folder}/` (default `current`) at a published version. */
  setCurrent(channel: string, board: string, version: string, folder?: string): void;
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

function checkRelease(release: PublishOptions): void {
  const { channel, board, version } = release;
  for (const [kind, value] of [
    ['channel', channel],
    ['board', board],
    ['version', version],
    ['current folder', release.current ?? 'current'],
    ...release.artifacts.map((artifact) => ['artifact', artifact.name]),
  ] as const) {
    checkSegment(kind, value);
  }
}

/** Publishes one release: `version.txt` first (unless given), every file signed, then `current` moved. */
async function publish(
  release: PublishOptions,
  parts: { store: ObjectStore; key: SimSigningKey; url: string; style: SimOriginStyle },
): Promise<PublishedRelease> {
  checkRelease(release);
  const { channel, board, version } = release;
  const folder = `/${channel}/${board}/${version}`;
  const writer = new ReleaseWriter(parts.store, parts.key, folder, `${parts.url}${folder}`, release);
  const specs: ArtifactSpec[] = [...release.artifacts];
  if (!specs.some((artifact) => artifact.name === 'version.txt')) {
    const prefix = release.prefix ?? (parts.style === 'coreos' ? 'COREOS' : 'FLATCAR');
    const date = release.signatureDate ?? new Date();
    specs.unshift({ name: 'version.txt', content: versionFileText(prefix, version, date) });
  }
  for (const spec of specs) await writer.write(spec, version);
  if (release.makeCurrent ?? true) parts.store.setCurrent(channel, board, version, release.current);
  return writer.published;
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
  const style = options.style ?? 'flatcar';
  const state: OriginState = { store: new ObjectStore(), faults: new FaultList(), requests: [] };
  const server = createServer((request, response) => {
    handleRequest(request, response, state).catch((error: unknown) => {
      response.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
  const host = options.host ?? '127.0.0.1';
  await listenOn(server, host, options.port ?? 0, options.waitForAddressMs ?? 0);
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;
  const baseUrl = `${url}/{channel}`;
  return {
    url,
    baseUrl,
    style,
    imagePrefix: style,
    channel: (name) => ({ name, baseUrl }),
    source: (name, channels) => ({
      name,
      baseUrl,
      versionKey: style === 'coreos' ? 'COREOS_VERSION_ID' : 'FLATCAR_VERSION_ID',
      channels,
      keys: [key.primaryFingerprint],
    }),
    publicKeyArmored: key.publicKeyArmored,
    primaryFingerprint: key.primaryFingerprint,
    signingKeyFingerprint: key.signingKeyFingerprint,
    publishRelease: (release) => publish(release, { store: state.store, key, url, style }),
    publishUpdatePayloads: (update) =>
      publishUpdatePayloads(
        {
          url,
          putFile: (path, content) => state.store.putContent(path, content),
          signDetached: async (bytes) => (await signChunks(key, [bytes])).signature,
        },
        update,
      ),
    setCurrent: (channel, board, version, folder) => state.store.setCurrent(channel, board, version, folder),
    putFile: (path, content) => state.store.putContent(path, content),
    removeFile: (path) => state.store.delete(path),
    linkFile: (path, target) => state.store.link(path, target),
    inject: (pathPattern, fault, injectOptions) => state.faults.inject(pathPattern, fault, injectOptions),
    clearFaults: () => state.faults.clear(),
    requests: state.requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

/** What a keyring needs to trust the sim origin: pass to `loadKeyring(armoredKeys, trustedFingerprints)`. */
export function simTrust(origin: Pick<SimOrigin, 'publicKeyArmored' | 'primaryFingerprint'>): {
  armoredKeys: string[];
  trustedFingerprints: string[];
} {
  return { armoredKeys: [origin.publicKeyArmored], trustedFingerprints: [origin.primaryFingerprint] };
}
