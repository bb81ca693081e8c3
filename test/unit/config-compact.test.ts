import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../shared/config.ts';
import { compactConfig } from '../../shared/config-compact.ts';

const examples = [
  'cldist.config.example.json',
  ...readdirSync('examples')
    .filter((name) => name.endsWith('.json'))
    .map((name) => `examples/${name}`),
];

/** Configs that set a few fields inside objects whose other fields keep their defaults. */
const partial = [
  {},
  { update: {} },
  { update: { payloads: ['oem-qemu.gz'] } },
  { schedule: { everyMinutes: 5 } },
  { keyring: { expiryWarningDays: 10 } },
  { fleet: { flushIntervalSeconds: 9, failedRate: { threshold: 0.5 } } },
  { channels: [{ name: 'stable' }], boards: ['amd64-usr', 'arm64-usr'] },
  { api: { unknownIgnitionKeys: 'reject' } },
  { queue: { retry: { maxReceives: 3 } } },
];

describe('the config the functions carry without its defaults', () => {
  it.each(examples)('parses back to the same config: %s', (file) => {
    const config = loadConfigFile(file);
    expect(parseConfig(compactConfig(config))).toEqual(config);
  });

  it.each(partial.map((input) => [JSON.stringify(input), input]))(
    'parses back to the same config: %s',
    (_, input) => {
      const config = parseConfig(input);
      expect(parseConfig(compactConfig(config))).toEqual(config);
    },
  );

  it('is empty for the defaults and smaller than the whole config for a real one', () => {
    expect(compactConfig(parseConfig({}))).toEqual({});
    const config = loadConfigFile('examples/coreos-and-flatcar.json');
    const compact = JSON.stringify(compactConfig(config)).length;
    expect(compact).toBeLessThan(JSON.stringify(config).length);
  });
});
