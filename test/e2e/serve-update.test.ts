import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SimOrigin, startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { simUpdateOrigin } from '../../local/sim-origin/update-payloads.ts';
import type { StatusModel } from '../../local/status/model.ts';
import { MAIN_UPDATE_PAYLOAD } from '../../shared/update/payload-record.ts';
import { buildCrauPayload, type TestKeyPair, testPayloadKey } from '../support/crau-generator.ts';
import { omahaCheck } from '../support/update-fixtures.ts';
import { adminHeaders, board, type Started, serveFor, simConfig, tempDir, waitFor } from './serve-harness.ts';

const reader = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  isArray: (name, _path, _leaf, isAttribute) => !isAttribute && ['package', 'app'].includes(name),
});

interface OmahaPackageXml {
  name: string;
  hash: string;
  hash_sha256?: string;
  size: string;
  required: string;
}

interface UpdateCheckXml {
  status: string;
  urls?: { url: { codebase: string } };
  manifest?: {
    version: string;
    packages: { package: OmahaPackageXml[] };
    actions: { action: { event: string; sha256: string } };
  };
}

const oemPayload = 'oem-qemu.gz';
const good = { channel: 'stable', version: '4081.2.0' };
const tampered = { channel: 'beta', version: '4116.1.0' };

const digest = (algorithm: 'sha1' | 'sha256', bytes: Uint8Array) =>
  createHash(algorithm).update(bytes).digest('base64');

describe('cldist serve mirrors an update payload and offers it over Omaha', () => {
  let sim: SimOrigin;
  let dir: string;
  let signer: TestKeyPair;
  let running: Started | undefined;
  let mainBytes: Uint8Array;
  let oemBytes: Uint8Array;

  /** One update check over HTTP, as update_engine posts it; returns the raw body and its updatecheck. */
  async function check(started: Started, track: string, version = '3975.2.0') {
    const res = await fetch(`${started.handle.url}/v1/update/`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml' },
      body: omahaCheck({ track, version }),
    });
    expect(res.status).toBe(200);
    const body = await res.text();
    const doc = reader.parse(body) as { response: { app: Array<{ updatecheck: UpdateCheckXml }> } };
    const updatecheck = doc.response.app[0]?.updatecheck;
    if (updatecheck === undefined) throw new Error(`no updatecheck in ${body}`);
    return { body, updatecheck };
  }

  async function statusOf(started: Started): Promise<StatusModel> {
    const res = await fetch(`${started.handle.url}/v1/status`, { headers: adminHeaders(started.handle) });
    expect(res.status).toBe(200);
    return (await res.json()) as StatusModel;
  }

  beforeAll(async () => {
    sim = await startSimOrigin();
    dir = await tempDir('serve-update');
    signer = testPayloadKey();
    const keyFile = join(dir, 'update-payload-key.pub.pem');
    await writeFile(keyFile, signer.publicPem);

    mainBytes = buildCrauPayload({ signers: [signer.privateKey], data: 300_001 }).bytes;
    oemBytes = buildCrauPayload({ signers: [signer.privateKey], data: 40_000 }).bytes;
    // Signed by the trusted key, then one data byte changed: what an attacker or a broken origin serves.
    const forged = buildCrauPayload({
      signers: [signer.privateKey],
      data: 200_000,
      tamper: { flipDataByte: 1000 },
    }).bytes;
    for (const release of [good, tampered]) {
      await sim.publishRelease({ ...release, board, artifacts: [] });
    }
    await sim.publishUpdatePayloads({
      board,
      version: good.version,
      payloads: [
        { name: MAIN_UPDATE_PAYLOAD, content: mainBytes },
        { name: oemPayload, content: oemBytes },
      ],
    });
    await sim.publishUpdatePayloads({
      board,
      version: tampered.version,
      payloads: [{ name: MAIN_UPDATE_PAYLOAD, content: forged }],
    });

    const config = await simConfig(sim, dir, [good.channel, tampered.channel], {
      artifacts: [{ name: 'version.txt' }],
      update: { origin: simUpdateOrigin(sim.url), payloads: [oemPayload], payloadKeys: [keyFile] },
    });
    running = await serveFor(config, join(dir, 'data'));
  });

  afterAll(async () => {
    await running?.handle.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers an update check with the hashes and size of the bytes it then serves at the codebase', async () => {
    const started = running;
    if (started === undefined) throw new Error('serve did not start');
    const { updatecheck } = await waitFor(async () => {
      const answer = await check(started, good.channel);
      return answer.updatecheck.status === 'ok' && answer;
    }, `an update offer for ${good.version}`);

    expect(updatecheck.manifest?.version).toBe(good.version);
    const [main, oem, ...rest] = updatecheck.manifest?.packages.package ?? [];
    expect(rest).toEqual([]);
    expect(main).toEqual({
      name: MAIN_UPDATE_PAYLOAD,
      hash: digest('sha1', mainBytes),
      size: String(mainBytes.byteLength),
      required: 'true',
    });
    expect(oem).toEqual({
      name: oemPayload,
      hash: digest('sha1', oemBytes),
      hash_sha256: createHash('sha256').update(oemBytes).digest('hex'),
      size: String(oemBytes.byteLength),
      required: 'false',
    });
    expect(updatecheck.manifest?.actions.action).toMatchObject({
      event: 'postinstall',
      sha256: digest('sha256', mainBytes),
    });

    // update_engine downloads codebase + package name; the same server answers with those exact bytes.
    const codebase = updatecheck.urls?.url.codebase ?? '';
    expect(codebase.startsWith(`${started.handle.url}/mirror/`)).toBe(true);
    expect(codebase.endsWith('/')).toBe(true);
    for (const [name, bytes] of [
      [MAIN_UPDATE_PAYLOAD, mainBytes],
      [oemPayload, oemBytes],
    ] as const) {
      const res = await fetch(`${codebase}${name}`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
    }

    // An instance already on the offered version is told there is nothing newer.
    expect((await check(started, good.channel, good.version)).updatecheck).toEqual({ status: 'noupdate' });
  });

  it('never mirrors or names a tampered payload, though its release is current on its channel', async () => {
    const started = running;
    if (started === undefined) throw new Error('serve did not start');
    const status = await waitFor(async () => {
      const s = await statusOf(started);
      const refused = s.events.some(
        (e) =>
          e.event === 'artifact.verification_failed' &&
          e.version === tampered.version &&
          e.artifact === MAIN_UPDATE_PAYLOAD,
      );
      const current = s.channels.find((c) => c.channel === tampered.channel)?.currentMirrored;
      return refused && current === tampered.version && s;
    }, `the refusal of the ${tampered.version} payload and ${tampered.channel} current at it`);
    expect(
      status.events
        .filter((e) => e.event === 'artifact.verification_failed')
        .map((e) => [e.channel, e.version, e.artifact, e.detail?.reason]),
    ).toEqual([[tampered.channel, tampered.version, MAIN_UPDATE_PAYLOAD, 'crau-signature']]);

    const wouldBe = `${started.handle.url}/mirror/update/${board}/${tampered.version}/${MAIN_UPDATE_PAYLOAD}`;
    const res = await fetch(wouldBe);
    expect(res.status).toBe(404);
    await res.arrayBuffer();

    const refusedCheck = await check(started, tampered.channel);
    expect(refusedCheck.updatecheck).toEqual({ status: 'noupdate' });
    expect(refusedCheck.body).not.toContain(tampered.version);
    const goodCheck = await check(started, good.channel);
    expect(goodCheck.updatecheck.status).toBe('ok');
    expect(goodCheck.body).not.toContain(tampered.version);
  });
});
