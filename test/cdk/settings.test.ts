import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contextKeys, loadStackSettings, parseDeploySettings } from '../../cdk/settings.ts';
import { parseConfig, projectRoot } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';

function contextOf(values: Record<string, unknown>): (key: string) => unknown {
  return (key) => values[key];
}

describe('stack settings from context and the shared config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cldist-settings-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('deploys the defaults when the default config file is absent', () => {
    const settings = loadStackSettings(contextOf({ [contextKeys.configFile]: 'cldist.config.json' }), dir);
    expect(settings.configSource).toBe('defaults');
    expect(settings.config.schedule.everyMinutes).toBe(15);
    expect(settings.deploy.worker.maxConcurrency).toBe(2);
    expect(settings.deploy.mirror.trustKeyringKey).toBe('trust/keyring.asc');
    expect(settings.deploy.mirror.cloudFront).toBe(true);
  });

  it('reads the same config file single-machine mode reads, validated by the same schema', () => {
    writeFileSync(
      join(dir, 'site.json'),
      JSON.stringify({ schedule: { everyMinutes: 7 }, boards: ['arm64-usr'] }),
    );
    const settings = loadStackSettings(contextOf({ [contextKeys.configFile]: 'site.json' }), dir);
    expect(settings.configSource).toBe('file site.json');
    expect(settings.config.schedule.everyMinutes).toBe(7);
    expect(settings.config.sources[0]?.channels[0]?.boards).toEqual(['arm64-usr']);
  });

  it('prefers an inline config, as an object from cdk.json or a JSON string from -c', () => {
    writeFileSync(join(dir, 'cldist.config.json'), JSON.stringify({ schedule: { everyMinutes: 7 } }));
    const fromObject = loadStackSettings(
      contextOf({ [contextKeys.config]: { schedule: { everyMinutes: 3 } } }),
      dir,
    );
    expect(fromObject.config.schedule.everyMinutes).toBe(3);
    const fromString = loadStackSettings(
      contextOf({ [contextKeys.config]: '{"schedule":{"everyMinutes":4}}' }),
      dir,
    );
    expect(fromString.config.schedule.everyMinutes).toBe(4);
    rmSync(join(dir, 'cldist.config.json'));
  });

  it('accepts the example config shipped in the repository', () => {
    const settings = loadStackSettings(
      contextOf({ [contextKeys.configFile]: 'cldist.config.example.json' }),
      projectRoot,
    );
    const [flatcar] = settings.config.sources;
    expect(flatcar?.channels.map((c) => c.boards)).toEqual([
      ['amd64-usr', 'arm64-usr'],
      ['amd64-usr', 'arm64-usr'],
    ]);
    expect(flatcar?.artifacts.filter((a) => !a.required)).toEqual([]);
    expect(flatcar?.artifacts.map((a) => a.name)).toContain('flatcar_production_image.bin.bz2');
  });

  it('accepts the CoreOS and Flatcar example, and its parsed form passes to the functions unchanged', () => {
    const settings = loadStackSettings(
      contextOf({ [contextKeys.configFile]: 'examples/coreos-and-flatcar.json' }),
      projectRoot,
    );
    expect(settings.config.sources.map((s) => s.mirrorPath)).toEqual(['coreos', 'flatcar']);
    // The functions get the parsed config as JSON and parse it again.
    const again = parseConfig(JSON.parse(JSON.stringify(settings.config)));
    expect(again).toEqual(settings.config);
  });

  it('refuses an explicitly named config file that does not exist', () => {
    expect(() => loadStackSettings(contextOf({ [contextKeys.configFile]: 'typo.json' }), dir)).toThrow(
      /cldist:configFile names .*typo\.json, which does not exist/,
    );
  });

  it('names the bad field of an invalid config', () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ schedule: { everyMinutes: 0 } }));
    const load = () => loadStackSettings(contextOf({ [contextKeys.configFile]: 'bad.json' }), dir);
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/schedule\.everyMinutes/);
    expect(() => loadStackSettings(contextOf({ [contextKeys.config]: '{not json' }), dir)).toThrow(
      /context cldist:config is not valid JSON/,
    );
  });
});

describe('deployment-only settings', () => {
  it('accepts every documented option', () => {
    const settings = parseDeploySettings({
      subscriptions: [
        { protocol: 'email', endpoint: 'ops@example.com', filter: { event: ['artifact.missing'] } },
        { protocol: 'https', endpoint: 'https://hooks.example.com/x' },
        { protocol: 'sqs', endpoint: 'arn:aws:sqs:eu-west-1:123456789012:q' },
      ],
      worker: { maxConcurrency: 10, minThroughputMBps: 80 },
      api: {
        domainName: 'ignition.example.com',
        certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0b5f7a3e-3c1e-4d57-9b8a-6a0c2c0e9f11',
      },
      mirror: { cloudFront: true, accessLogs: true },
      alarms: { email: 'oncall@example.com' },
      logRetentionDays: 365,
    });
    expect(settings.subscriptions[2]).toMatchObject({ protocol: 'sqs', rawMessageDelivery: true });
    expect(settings.api.instanceRateLimit).toBe(20);
  });

  it.each([
    [{ worker: { maxConcurrency: 1 } }, 'cldist:deploy.worker.maxConcurrency'],
    [
      { subscriptions: [{ protocol: 'https', endpoint: 'http://insecure.example.com' }] },
      'cldist:deploy.subscriptions.0.endpoint',
    ],
    [
      { subscriptions: [{ protocol: 'sqs', endpoint: 'my-queue' }] },
      'cldist:deploy.subscriptions.0.endpoint: an SQS queue ARN',
    ],
    [
      { subscriptions: [{ protocol: 'email', endpoint: 'x@y.z', filter: { event: ['release.done'] } }] },
      'cldist:deploy.subscriptions.0.filter.event.0',
    ],
    [
      { api: { domainName: 'ignition.example.com' } },
      'cldist:deploy.api: domainName and certificateArn go together',
    ],
    [{ logRetentionDays: 10 }, 'cldist:deploy.logRetentionDays: one of 1, 3, 5'],
    [{ mirror: { trustKeyringKey: '/abs/../key' } }, 'cldist:deploy.mirror.trustKeyringKey'],
    [{ alarm: {} }, 'cldist:deploy'],
  ])('names the bad field of %j', (input, field) => {
    expect(() => parseDeploySettings(input)).toThrow(ConfigError);
    expect(() => parseDeploySettings(input)).toThrow(field);
  });
});
