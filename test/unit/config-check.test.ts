import { describe, expect, it } from 'vitest';
import { checkRawConfig } from '../../local/config-check.ts';
import { configSchema, parseConfig } from '../../shared/config.ts';
import { keysAt } from '../../shared/config-issues.ts';
import { checkNames, judgeName } from '../../shared/config-names.ts';

const now = new Date('2026-12-01T00:00:00Z');

describe('judgeName: boards and channels against what Flatcar publishes', () => {
  it.each([
    ['board', 'amd64-usr'],
    ['board', 'arm64-usr'],
    ['channel', 'stable'],
    ['channel', 'beta'],
    ['channel', 'alpha'],
    ['channel', 'lts'],
    ['channel', 'lts-2024'],
    ['channel', 'current-2023'],
  ] as const)('%s %s is known', (kind, name) => {
    expect(judgeName(kind, name)).toEqual({ kind: 'known' });
  });

  it.each([
    ['board', 'amd64-us', 'amd64-usr'],
    ['board', 'amd46-usr', 'amd64-usr'],
    ['board', 'arm64_usr', 'arm64-usr'],
    ['board', 'AMD64-USR', 'amd64-usr'],
    ['channel', 'stabel', 'stable'],
    ['channel', 'alhpa', 'alpha'],
    ['channel', 'ltss', 'lts'],
    ['channel', 'curent-2024', 'current-2024'],
    ['channel', 'lst', 'lts'],
  ] as const)('%s %s is a typo of %s: an error', (kind, name, suggestion) => {
    expect(judgeName(kind, name)).toEqual({ kind: 'typo', suggestion });
  });

  it.each([
    ['board', 'riscv-usr', 'amd64-usr'],
    ['board', 'x86', 'amd64-usr'],
    ['channel', 'edge', 'beta'],
    ['channel', 'nightly', 'stable'],
  ] as const)(
    '%s %s is merely unknown (a private origin may publish it): a warning naming the closest, %s',
    (kind, name, suggestion) => {
      expect(judgeName(kind, name)).toEqual({ kind: 'unknown', suggestion });
    },
  );

  it('reads channel and per-channel board names out of every source', () => {
    const { errors, warnings } = checkNames({
      sources: [
        { name: 'coreos', channels: [{ name: 'stabel', boards: ['amd64-usr', 'amd46-usr'] }] },
        { name: 'flatcar', channels: [{ name: 'curent-2024' }, { name: 'edge', boards: ['arm64-us'] }] },
        'nonsense',
      ],
    });
    expect(errors.map((e) => [e.path, e.suggestion])).toEqual([
      ['sources.0.channels.0.name', 'stable'],
      ['sources.0.channels.0.boards.1', 'amd64-usr'],
      ['sources.1.channels.0.name', 'current-2024'],
      ['sources.1.channels.1.boards.0', 'arm64-usr'],
    ]);
    expect(warnings.map((w) => [w.path, w.suggestion])).toEqual([['sources.1.channels.1.name', 'beta']]);
  });

  it('reads names out of a raw config with other faults, and leaves malformed entries to the schema', () => {
    const { errors, warnings } = checkNames({
      boards: ['amd64-usr', 'amd64-us', 7],
      channels: [{ name: 'stabel' }, 'beta', { name: 'edge' }, {}],
      keyring: 'nonsense',
    });
    expect(errors).toEqual([
      { path: 'boards.1', message: 'unknown board "amd64-us"', suggestion: 'amd64-usr' },
      { path: 'channels.0.name', message: 'unknown channel "stabel"', suggestion: 'stable' },
    ]);
    expect(warnings.map((w) => [w.path, w.suggestion])).toEqual([['channels.2.name', 'beta']]);
    expect(checkNames(null)).toEqual({ errors: [], warnings: [] });
    expect(checkNames([1, 2])).toEqual({ errors: [], warnings: [] });
  });
});

describe('unknown keys get the nearest key the schema accepts there', () => {
  it('finds the keys at a path through defaults, arrays and unions', () => {
    expect(keysAt(configSchema, [])).toContain('schedule');
    expect(keysAt(configSchema, ['keyring'])).toContain('trustedFingerprints');
    expect(keysAt(configSchema, ['channels', 3])).toEqual(['name', 'baseUrl', 'keepReleases']);
    expect(keysAt(configSchema, ['store'])).toEqual(
      expect.arrayContaining(['kind', 'path', 'bucket', 'prefix']),
    );
    expect(keysAt(configSchema, ['boards', 0])).toEqual([]);
    expect(keysAt(configSchema, ['sources', 0])).toEqual(
      expect.arrayContaining([
        'name',
        'baseUrl',
        'versionKey',
        'channels',
        'artifacts',
        'keys',
        'mirrorPath',
      ]),
    );
    expect(keysAt(configSchema, ['sources', 0, 'channels', 1])).toEqual([
      'name',
      'boards',
      'baseUrl',
      'upstream',
      'current',
      'keepReleases',
    ]);
    expect(keysAt(configSchema, ['nothing', 'here'])).toEqual([]);
  });

  it('says the same in serve (parseConfig) as in config check', async () => {
    const raw = {
      schedul: {},
      channels: [{ name: 'stable', baseURL: 'https://x.example' }],
      api: { colour: 1 },
    };
    const lines = [
      'schedul: unknown key; did you mean `schedule`?',
      'channels.0.baseURL: unknown key; did you mean `baseUrl`?',
      'api.colour: unknown key',
    ];
    let message = '';
    try {
      parseConfig(raw);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n').slice(1).sort()).toEqual([...lines].sort());
    const report = await checkRawConfig(raw, now);
    expect(report.valid).toBe(false);
    expect(
      report.errors
        .map((e) => `${e.path}: ${e.message}${e.suggestion ? `; did you mean \`${e.suggestion}\`?` : ''}`)
        .sort(),
    ).toEqual([...lines].sort());
  });
});

describe('checkRawConfig', () => {
  it('reports the built-in config valid, with resolved base URLs and the trusted keys with their subkeys', async () => {
    const report = await checkRawConfig({}, now);
    expect(report.errors).toEqual([]);
    expect(report.valid).toBe(true);
    const stable = report.effective?.sources[0]?.channels.find((c) => c.name === 'stable');
    expect(stable?.versionUrls).toEqual({
      'amd64-usr': 'https://stable.release.flatcar-linux.net/amd64-usr/current/version.txt',
    });
    expect(report.warnings.filter((w) => w.path !== 'keyring.trustedFingerprints')).toEqual([]);
    const flatcar = report.keys?.find((k) => k.fingerprint === 'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A');
    expect(flatcar?.signingSubkeys.filter((s) => s.state === 'valid').map((s) => s.expires)).toEqual([
      '2027-03-08T17:54:02.000Z',
    ]);
    expect(report.warnings.map((w) => w.message)).toEqual([
      expect.stringContaining('04127D0BFABEC8871FFB2CCE50E0885593D2DCB4 has no valid signing subkey'),
    ]);
  });

  it('lists every problem at once: schema, names and an unreadable keyring file', async () => {
    const report = await checkRawConfig(
      { boards: ['amd64-us'], schedule: { everyMinutes: 0 }, keyring: { files: ['/nonexistent/key.asc'] } },
      now,
    );
    expect(report.valid).toBe(false);
    expect(report.errors.map((e) => e.path)).toEqual(['schedule.everyMinutes', 'boards.0']);
    const keyringOnly = await checkRawConfig({ keyring: { files: ['/nonexistent/key.asc'] } }, now);
    expect(keyringOnly.errors).toEqual([
      { path: 'keyring', message: expect.stringContaining('cannot read /nonexistent/key.asc') },
    ]);
    expect(keyringOnly.effective?.keyring.files).toEqual(['/nonexistent/key.asc']);
  });

  it('warns that the old top-level lists are read as one source, showing it in the new shape', async () => {
    const report = await checkRawConfig({ channels: [{ name: 'stable' }], boards: ['arm64-usr'] }, now);
    expect(report.valid).toBe(true);
    const warning = report.warnings.find((w) => w.path === 'channels, boards');
    expect(warning?.message).toContain('are read as one source; write it as "sources": [{"name":"flatcar"');
    expect(warning?.message).toContain('"boards":["arm64-usr"]');
    expect(report.effective?.sources.map((s) => s.mirrorPath)).toEqual(['']);
  });

  it('warns about a base URL that ends in a board, suggesting {board}', async () => {
    const report = await checkRawConfig(
      {
        sources: [
          {
            name: 'coreos',
            baseUrl: 'https://{channel}.release.core-os.net/amd64-usr/',
            versionKey: 'COREOS_VERSION_ID',
          },
        ],
      },
      now,
    );
    expect(report.valid).toBe(true);
    expect(report.warnings).toContainEqual({
      path: 'sources.0.baseUrl',
      message: expect.stringContaining('ends in a board, and the board is appended to it'),
      suggestion: 'https://{channel}.release.core-os.net/{board}',
    });
  });

  it('reads the update payload keys when update is configured, naming the field of one it cannot use', async () => {
    expect((await checkRawConfig({ update: {} }, now)).errors).toEqual([]);
    const report = await checkRawConfig(
      {
        update: {
          payloadKeys: ['keys/flatcar-update-payload-key-official-v2.pub.pem', '/nonexistent/u.pem'],
        },
      },
      now,
    );
    expect(report.errors).toEqual([
      { path: 'update.payloadKeys.1', message: expect.stringContaining('cannot read /nonexistent/u.pem') },
    ]);
    const clash = await checkRawConfig(
      { channels: [{ name: 'stable' }, { name: 'update' }], update: {} },
      now,
    );
    expect(clash.errors).toEqual([
      { path: 'channels.1.name', message: expect.stringContaining('the store folder of update payloads') },
    ]);
    expect((await checkRawConfig({ channels: [{ name: 'update' }] }, now)).errors).toEqual([]);
    const namedUpdate = await checkRawConfig({ sources: [{ name: 'update' }], update: {} }, now);
    expect(namedUpdate.errors).toEqual([
      {
        path: 'sources.0.mirrorPath',
        message: expect.stringContaining('the store folder of update payloads'),
      },
    ]);
    const atRoot = await checkRawConfig(
      { sources: [{ name: 'flatcar', mirrorPath: '', channels: [{ name: 'update' }] }], update: {} },
      now,
    );
    expect(atRoot.errors).toEqual([
      {
        path: 'sources.0.channels.0.name',
        message: expect.stringContaining('the store folder of update payloads'),
      },
    ]);
    const inFolder = { sources: [{ name: 'flatcar', channels: [{ name: 'update' }] }], update: {} };
    expect((await checkRawConfig(inFolder, now)).errors).toEqual([]);
    const schema = await checkRawConfig(
      { update: { origin: 'https://example.test/flat/', payloads: ['x.txt'] } },
      now,
    );
    expect(schema.errors.map((e) => e.path).sort()).toEqual(['update.origin', 'update.payloads.0']);
  });
});
