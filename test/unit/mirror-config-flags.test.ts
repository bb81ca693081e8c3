import { describe, expect, it } from 'vitest';
import { mirrorConfigFromFlags } from '../../local/mirror-once.ts';
import { ConfigError } from '../../shared/errors.ts';

const good = {
  origin: 'http://127.0.0.1:9/{channel}',
  channel: ['stable', 'beta'],
  board: 'arm64-usr',
  artifact: ['version.txt', 'flatcar_production_pxe.vmlinuz'],
};

async function errorOf(flags: Parameters<typeof mirrorConfigFromFlags>[0]): Promise<ConfigError> {
  const error = await mirrorConfigFromFlags(flags).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
  return error;
}

describe('mirror --once flags', () => {
  it('keeps the named channels in config order and applies every flag to them when all are valid', async () => {
    const config = await mirrorConfigFromFlags(good);
    const [source] = config.sources;
    expect(config.sources).toHaveLength(1);
    expect(source?.channels.map((c) => [c.name, c.baseUrl, c.boards])).toEqual([
      ['beta', good.origin, ['arm64-usr']],
      ['stable', good.origin, ['arm64-usr']],
    ]);
    expect(source?.artifacts).toEqual([
      { name: 'version.txt', required: true },
      { name: 'flatcar_production_pxe.vmlinuz', required: true },
    ]);
  });

  it('names the bad flag among good ones with the message it gives alone', async () => {
    const alone = await errorOf({ board: 'Not A Board' });
    const among = await errorOf({ ...good, board: 'Not A Board' });
    expect(alone.message).toMatch(/^--board Not A Board is invalid:\n/);
    expect(among.message).toBe(alone.message);
  });

  it('names the first bad flag in the order channel, origin, board, artifact', async () => {
    const bad = { ...good, origin: 'ftp://example.org/{channel}', artifact: ['a/b'] };
    expect((await errorOf(bad)).message).toMatch(/^--origin ftp:\/\/example\.org\/\{channel\} is invalid:/);
    expect((await errorOf({ ...bad, channel: ['Bad/Name'] })).message).toMatch(
      /^--channel Bad\/Name is invalid:/,
    );
    expect((await errorOf({ ...good, artifact: ['a/b'] })).message).toMatch(/^--artifact a\/b is invalid:/);
  });
});
