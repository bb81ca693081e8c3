import { createHash, randomBytes } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import { beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../shared/errors.ts';
import type { MirrorCurrent } from '../../shared/ledger/records.ts';
import { flatcarAppId } from '../../shared/update/omaha-request.ts';
import { buildOmahaResponse } from '../../shared/update/omaha-response.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';
import {
  channelSources,
  memoryGroups,
  memoryPayloads,
  memoryRecorder,
  omahaCheck,
} from '../support/update-fixtures.ts';

const reader = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  isArray: (name, _path, _leaf, isAttribute) => !isAttribute && ['package', 'app', 'event'].includes(name),
});

type Xml = Record<string, unknown>;

function appOf(body: string, index = 0): Xml {
  const doc = reader.parse(body) as { response: { app: Xml[] } };
  const app = doc.response.app[index];
  if (app === undefined) throw new Error(`no app ${index} in ${body}`);
  return app;
}

const mirrorBaseUrl = 'https://mirror.example.net/mirror/';
const now = new Date('2026-12-03T08:30:00Z');

function setup() {
  const payloads = memoryPayloads();
  const groups = memoryGroups();
  const recorder = memoryRecorder();
  const currents = new Map<string, MirrorCurrent>();
  const setCurrent = (channel: string, board: string, version: string) =>
    currents.set(`${channel}/${board}`, {
      source: 'flatcar',
      channel,
      board,
      version,
      updatedAt: '2026-12-01T00:00:00.000Z',
    });
  const service = createUpdateService(
    {
      groups,
      current: { getCurrent: async ({ channel, board }) => currents.get(`${channel}/${board}`) },
      payloads,
      recorder,
      clock: () => now,
    },
    { mirrorBaseUrl, sources: channelSources('alpha', 'beta', 'stable', 'lts') },
  );
  return { payloads, groups, recorder, setCurrent, service };
}

describe('the Omaha endpoint, on requests in update_engine’s shape', () => {
  let s: ReturnType<typeof setup>;
  let main: Buffer;
  let oem: Buffer;
  beforeEach(() => {
    s = setup();
    main = randomBytes(300_001);
    oem = randomBytes(2282);
    s.setCurrent('stable', 'amd64-usr', '4152.2.0');
    s.payloads.add('amd64-usr', '4152.2.0', 'flatcar_production_update.gz', main);
    s.payloads.add('amd64-usr', '4152.2.0', 'oem-qemu.gz', oem);
    s.payloads.add('amd64-usr', '4152.2.0', 'oem-azure.gz');
  });

  it('offers the verified payload with hashes and sizes of its exact bytes', async () => {
    const result = await s.service.omaha.answer(omahaCheck({ oem: 'qemu' }));
    expect(result.status).toBe(200);
    expect(result.body.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0"')).toBe(
      true,
    );
    const app = appOf(result.body);
    expect(app.appid).toBe(`{${flatcarAppId}}`);
    expect(app.status).toBe('ok');
    expect(app.ping).toEqual({ status: 'ok' });
    const check = app.updatecheck as Xml;
    expect(check.status).toBe('ok');
    expect(check.urls).toEqual({
      url: { codebase: 'https://mirror.example.net/mirror/update/amd64-usr/4152.2.0/' },
    });
    const manifest = check.manifest as {
      version: string;
      packages: { package: Xml[] };
      actions: { action: Xml };
    };
    expect(manifest.version).toBe('4152.2.0');
    expect(manifest.packages.package).toEqual([
      {
        name: 'flatcar_production_update.gz',
        hash: createHash('sha1').update(main).digest('base64'),
        size: '300001',
        required: 'true',
      },
      {
        name: 'oem-qemu.gz',
        hash: createHash('sha1').update(oem).digest('base64'),
        hash_sha256: createHash('sha256').update(oem).digest('hex'),
        size: '2282',
        required: 'false',
      },
    ]);
    expect(manifest.actions.action).toEqual({
      event: 'postinstall',
      sha256: createHash('sha256').update(main).digest('base64'),
      DisablePayloadBackoff: 'true',
    });
    expect(s.recorder.checkIns).toEqual([
      expect.objectContaining({
        machineId: '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
        appId: flatcarAppId,
        group: 'stable',
        version: '4081.2.0',
        board: 'amd64-usr',
        oem: 'qemu',
        at: now.toISOString(),
        answer: { kind: 'update', version: '4152.2.0' },
      }),
    ]);
  });

  it('names no OEM package when the instance’s OEM has no verified payload', async () => {
    const app = appOf((await s.service.omaha.answer(omahaCheck({ oem: 'ami' }))).body);
    const manifest = (app.updatecheck as Xml).manifest as { packages: { package: Xml[] } };
    expect(manifest.packages.package.map((p) => p.name)).toEqual(['flatcar_production_update.gz']);
  });

  it('reads the app ID with or without braces, in any case, and echoes it as sent', async () => {
    for (const appId of [flatcarAppId, flatcarAppId.toUpperCase(), `{${flatcarAppId.toUpperCase()}}`]) {
      const app = appOf((await s.service.omaha.answer(omahaCheck({ appId }))).body);
      expect(app.appid).toBe(appId);
      expect((app.updatecheck as Xml).status).toBe('ok');
    }
  });

  it('answers noupdate when the instance is current or newer, or nothing is verified', async () => {
    for (const version of ['4152.2.0', '4152.2.1', '4200.0.0+local-build']) {
      const app = appOf((await s.service.omaha.answer(omahaCheck({ version }))).body);
      expect(app.updatecheck).toEqual({ status: 'noupdate' });
    }
    s.setCurrent('beta', 'amd64-usr', '4186.1.0');
    const beta = appOf((await s.service.omaha.answer(omahaCheck({ track: 'beta' }))).body);
    expect(beta.updatecheck).toEqual({ status: 'noupdate' });
    const arm = appOf((await s.service.omaha.answer(omahaCheck({ board: 'arm64-usr' }))).body);
    expect(arm.updatecheck).toEqual({ status: 'noupdate' });
    expect(s.recorder.checkIns.map((c) => c.answer.kind)).toEqual(Array(5).fill('noupdate'));
  });

  it('acknowledges events, each with its type, result and error code recorded', async () => {
    const events =
      '<event eventtype="13" eventresult="1"></event><event eventtype="3" eventresult="0" errorcode="268437456"></event>';
    const result = await s.service.omaha.answer(omahaCheck({ events, updateCheck: false }));
    const app = appOf(result.body);
    expect(app.event).toEqual([{ status: 'ok' }, { status: 'ok' }]);
    expect(app.updatecheck).toBeUndefined();
    expect(s.recorder.checkIns[0]?.events).toEqual([
      { type: 13, result: 1 },
      { type: 3, result: 0, errorCode: 268437456 },
    ]);
    expect(s.recorder.checkIns[0]?.answer).toEqual({ kind: 'event-ack' });
  });

  it('answers an unknown application and an unknown group with an Omaha error status, HTTP 200', async () => {
    const other = '87efface-864d-49a5-9bb3-4b050a7c227a';
    const unknownApp = await s.service.omaha.answer(omahaCheck({ appId: `{${other}}` }));
    expect(unknownApp.status).toBe(200);
    expect(appOf(unknownApp.body)).toEqual({
      appid: `{${other}}`,
      status: 'error-unknownApplication',
      updatecheck: { status: 'error-internal' },
    });
    const unknownGroup = await s.service.omaha.answer(omahaCheck({ track: 'canary' }));
    expect(unknownGroup.status).toBe(200);
    expect(appOf(unknownGroup.body)).toMatchObject({
      status: 'error-unknownApplicationOrGroup',
      updatecheck: { status: 'error-internal' },
    });
    expect(s.recorder.checkIns.map((c) => c.answer)).toEqual([
      { kind: 'error', status: 'error-unknownApplicationOrGroup' },
    ]);
  });

  it('refuses a body that is not an Omaha 3.0 request with HTTP 400 and a reason', async () => {
    const cases: [string, RegExp][] = [
      ['<request protocol="3.0"><app>', /^error-malformed-xml: request body is not well-formed XML/],
      ['<request protocol="2.0"><app appid="x"/></request>', /^error-unsupported-protocol/],
      ['<response protocol="3.0"/>', /^error-not-omaha/],
      ['<request protocol="3.0"></request>', /no <app> element/],
      [
        omahaCheck().replace('machineid="0f1e2d3c4b5a69788796a5b4c3d2e1f0"', 'machineid="a b"'),
        /machineid is "a b"/,
      ],
      [omahaCheck().replace('track="stable"', ''), /has no track attribute/],
      [omahaCheck({ events: '<event eventtype="x" eventresult="1"/>' }), /eventtype is not an integer/],
    ];
    for (const [body, reason] of cases) {
      const result = await s.service.omaha.answer(body);
      expect(result.status, body).toBe(400);
      const { error } = (reader.parse(result.body) as { response: { error: Xml } }).response;
      expect(`${String(error.status)}: ${String(error['#text'])}`).toMatch(reason);
    }
    expect(s.recorder.checkIns).toEqual([]);
  });

  it('writes each answer’s own day time and apps, however answers are reused', () => {
    const app = (appId: string) => ({ appId, status: 'ok', ping: true, events: 1 });
    const morning = buildOmahaResponse([app('{a}'), app('b&"<')], new Date('2026-12-03T00:00:07Z'));
    const evening = buildOmahaResponse([app('{a}')], new Date('2026-12-03T23:59:59Z'));
    const again = buildOmahaResponse([app('b&"<')], new Date('2026-12-03T00:00:07Z'));
    expect(reader.parse(morning)).toMatchObject({
      response: { daystart: { elapsed_seconds: '7' }, app: [{ appid: '{a}' }, { appid: 'b&"<' }] },
    });
    expect(reader.parse(evening)).toMatchObject({
      response: {
        daystart: { elapsed_seconds: '86399' },
        app: [{ appid: '{a}', event: [{ status: 'ok' }] }],
      },
    });
    expect(again).toContain('<app appid="b&amp;&quot;&lt;" status="ok">');
    expect(again).not.toContain('{a}');
  });

  it('reads each release’s facts once per cache period, however many instances check', async () => {
    for (let i = 0; i < 50; i++) {
      await s.service.omaha.answer(omahaCheck({ machineId: `machine${i}` }));
    }
    expect(s.payloads.reads).toBe(1);
  });

  it('never names an unverified payload: a ledger outage is a TransientError, not a guess', async () => {
    const failing = createUpdateService(
      {
        groups: memoryGroups(),
        current: {
          getCurrent: async () => {
            throw new TransientError('ledger-unavailable', 'ledger get current failed');
          },
        },
        payloads: s.payloads,
        clock: () => now,
      },
      { mirrorBaseUrl, sources: channelSources('stable') },
    );
    await expect(failing.omaha.answer(omahaCheck())).rejects.toBeInstanceOf(TransientError);
  });
});
