import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseAttributes } from '../../local/commands/instances.ts';
import { parseListenAddress } from '../../local/metadata-listener.ts';
import type { InstanceRecord } from '../../shared/instances/types.ts';
import { ec2MetaData, instanceUuid, walkMetadata } from '../../shared/metadata/documents.ts';
import {
  imdsTokenValid,
  issueImdsToken,
  parseTokenTtl,
  processImdsKeys,
  proxyImdsKeys,
} from '../../shared/metadata/imds-token.ts';
import { createConfigMerger, mergeWrapper, wrapperSpecVersion } from '../../shared/metadata/merge.ts';
import { canonicalAddress, sshKeyProblem } from '../../shared/metadata/params.ts';
import { ed25519PublicKey } from '../support/ssh-keys.ts';

const record = (overrides: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id: 'node-1',
  kind: 'ignition',
  tokenHash: 'x',
  etag: '"0123456789abcdef0123456789abcdef"',
  bodyKey: 'instances/node-1/abc.ign',
  size: 1,
  oneTime: false,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  specVersion: '3.3.0',
  ...overrides,
});

describe('the merge wrapper', () => {
  const base = { ignition: { version: '3.0.0' } };
  const user = Buffer.from('{"ignition":{"version":"3.3.0"}}\n');

  it('is spec 3.0.0 and carries both configs byte for byte, each with its SHA-512', () => {
    const wrapper = JSON.parse(Buffer.from(mergeWrapper(Buffer.from(JSON.stringify(base)), user)).toString());
    expect(wrapper.ignition.version).toBe(wrapperSpecVersion);
    const [first, second] = wrapper.ignition.config.merge;
    const decoded = Buffer.from(second.source.replace('data:;base64,', ''), 'base64');
    expect(decoded.equals(user)).toBe(true);
    expect(second.verification.hash).toBe(`sha512-${createHash('sha512').update(user).digest('hex')}`);
    expect(JSON.parse(Buffer.from(first.source.replace('data:;base64,', ''), 'base64').toString())).toEqual(
      base,
    );
  });

  it('leaves 2.x configs, cloud-configs and a missing base alone', () => {
    const merge = createConfigMerger(base, 1024 * 1024);
    expect(merge(record({ specVersion: '2.2.0' }), user)).toEqual({ body: user, etag: record().etag });
    expect(merge(record({ kind: 'cloud-config' }), user).body).toBe(user);
    expect(createConfigMerger(undefined, 1024 * 1024)(record(), user).body).toBe(user);
    const wrapped = merge(record(), user);
    expect(wrapped.body).not.toBe(user);
    expect(wrapped.etag).not.toBe(record().etag);
    expect(merge(record(), user).body).toBe(wrapped.body);
  });
});

describe('IMDSv2 session tokens', () => {
  const now = new Date('2026-06-01T00:00:00Z');

  it('are bound to the subject and the expiry, and verify with any rotated key', () => {
    const keys = proxyImdsKeys(['new-secret-0123456789', 'old-secret-0123456789']);
    const oldKeys = proxyImdsKeys(['old-secret-0123456789']);
    if (keys === undefined || oldKeys === undefined) throw new Error('no keys');
    const token = issueImdsToken(oldKeys, 'instance:a', 60, now);
    expect(imdsTokenValid(keys, token, 'instance:a', now)).toBe(true);
    expect(imdsTokenValid(keys, token, 'instance:b', now)).toBe(false);
    expect(imdsTokenValid(keys, token, 'instance:a', new Date(now.getTime() + 60_000))).toBe(false);
    expect(imdsTokenValid(processImdsKeys(), token, 'instance:a', now)).toBe(false);
    expect(proxyImdsKeys([])).toBeUndefined();
  });

  it('take a TTL of whole seconds from 1 to 21600', () => {
    expect(parseTokenTtl('1')).toBe(1);
    expect(parseTokenTtl('21600')).toBe(21_600);
    for (const bad of [undefined, '0', '21601', '1e3', '0x10', '-5', ''])
      expect(parseTokenTtl(bad)).toBeUndefined();
  });
});

describe('addresses, keys and documents', () => {
  it('spells every address one way', () => {
    expect(canonicalAddress('FE80:0:0::1')).toBe('fe80::1');
    expect(canonicalAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalAddress('::ffff:a00:1')).toBe('10.0.0.1');
    expect(canonicalAddress('10.0.0.01')).toBeUndefined();
    expect(canonicalAddress('fe80::1%eth0')).toBeUndefined();
  });

  it('checks ssh keys by their decoded data', () => {
    expect(sshKeyProblem(ed25519PublicKey())).toBeUndefined();
    expect(sshKeyProblem('ssh-dss AAAA')).toMatch(/unsupported key type/);
    expect(sshKeyProblem(`${ed25519PublicKey()}\nssh-rsa x`)).toMatch(/one line/);
  });

  it('derives a stable UUID for ids that are not UUIDs', () => {
    expect(instanceUuid('node-1')).toBe(instanceUuid('node-1'));
    expect(instanceUuid('node-1')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(instanceUuid('6F9619FF-8B86-D011-B42D-00C04FC964FF')).toBe('6f9619ff-8b86-d011-b42d-00c04fc964ff');
  });

  it('walks the EC2 tree without reaching inherited properties', () => {
    const tree = ec2MetaData(record({ params: { ips: [], sshKeys: [], attributes: {} } }));
    expect(walkMetadata(tree, ['hostname'])).toBe('node-1');
    expect(walkMetadata(tree, ['toString'])).toBeUndefined();
    expect(walkMetadata(tree, ['hostname', 'x'])).toBeUndefined();
    expect(walkMetadata(tree, ['public-keys'])).toBeUndefined();
  });
});

describe('command-line parsing', () => {
  it('reads --metadata-listen HOST:PORT, IPv6 in brackets', () => {
    expect(parseListenAddress('169.254.169.254:80')).toEqual({ host: '169.254.169.254', port: 80 });
    expect(parseListenAddress('[fd00:ec2::254]:80')).toEqual({ host: 'fd00:ec2::254', port: 80 });
    for (const bad of ['169.254.169.254', ':80', 'host:99999', 'fd00::1:80']) {
      expect(() => parseListenAddress(bad), bad).toThrow(/expected HOST:PORT/);
    }
  });

  it('reads --attribute KEY=VALUE, the value may hold "="', () => {
    expect(parseAttributes(['a=1', 'b=x=y', 'c='])).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(() => parseAttributes(['novalue'])).toThrow(/expected KEY=VALUE/);
    expect(() => parseAttributes(['a=1', 'a=2'])).toThrow(/given twice/);
  });
});

describe('the proxy secret file', () => {
  it('reads one secret per line, re-reads it for a rotation, and refuses short or missing ones', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { fileSecretsProvider } = await import('../../shared/metadata/proxied.ts');
    const dir = await mkdtemp(join(tmpdir(), 'cldist-secrets-'));
    try {
      const file = join(dir, 'secret');
      await writeFile(file, '# current first\nfirst-secret-0123456789\n\nold-secret-0123456789\n');
      const secrets = await fileSecretsProvider(file, 0);
      expect(await secrets()).toEqual(['first-secret-0123456789', 'old-secret-0123456789']);
      await writeFile(file, 'rotated-secret-0123456789\n');
      expect(await secrets()).toEqual(['rotated-secret-0123456789']);
      await writeFile(file, 'short\n');
      expect(await secrets()).toEqual(['rotated-secret-0123456789']);
      await expect(fileSecretsProvider(file)).rejects.toThrow(/line 1 is shorter/);
      await expect(fileSecretsProvider(join(dir, 'absent'))).rejects.toThrow(/cannot be read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the metadata listener at start', () => {
  it('names the flag and the fix when the address is not on this machine', async () => {
    const { startMetadataListener } = await import('../../local/metadata-listener.ts');
    const { createLogger } = await import('../../local/runtime/log.ts');
    const { parseConfig } = await import('../../shared/config.ts');
    const logger = createLogger({ format: 'json', write: () => {} });
    const deps = {
      instances: { instanceAtAddress: async () => undefined },
      bodies: {},
      clock: () => new Date(),
    } as unknown as Parameters<typeof startMetadataListener>[0]['deps'];
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of a real machine.
    await expect(
      startMetadataListener({ host: '192.0.2.1', port: 0, deps, config: parseConfig({}), logger }),
    ).rejects.toThrow(/--metadata-listen 192\.0\.2\.1:0 is not an address of this machine; add it/);
  });
});
