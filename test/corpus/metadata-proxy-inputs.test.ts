import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '../../local/metadata-proxy/api-client.ts';
import { createInstanceCache } from '../../local/metadata-proxy/instance-cache.ts';
import { parseApiUrl, parseBoundedInteger, parseListen } from '../../local/metadata-proxy/options.ts';
import { checkPath, forwardableHeaders } from '../../local/metadata-proxy/request-rules.ts';
import { parseSecret } from '../../local/metadata-proxy/secret-file.ts';
import { type RunningProxy, startMetadataProxy } from '../../local/metadata-proxy/server.ts';
import { silentLogger } from '../../local/runtime/log.ts';
import { ConfigError } from '../../shared/errors.ts';
import { ask, type ContractApi, startContractApi } from '../support/metadata-proxy-harness.ts';
import { reportTallies, runCorpus, within } from './corpus-support.ts';

afterAll(() => reportTallies('metadata-proxy-inputs'));

const segment = fc.constantFrom(
  '..',
  '.',
  '%2e%2e',
  '%2E%2e',
  '%2e',
  '.%2e',
  '%2f',
  '%2F..',
  '%5c',
  '\\',
  '%00',
  '%',
  '%zz',
  'openstack',
  'latest',
  'user_data',
  'meta-data',
  'instance-id',
  '',
  ' ',
  '?x=1',
  '#f',
  'ä',
);
const pathLike = fc.oneof(
  fc.array(segment, { maxLength: 8 }).map((parts) => `/${parts.join('/')}`),
  fc.string({ maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
);

describe('bad-input corpus: metadata proxy', () => {
  it('checkPath never lets a path leave /v1/metadata/ once appended, and never throws', async () => {
    await runCorpus('metadata-proxy path', pathLike, (raw) => {
      const result = checkPath(raw);
      if (!result.ok) {
        expect(result.reason.length).toBeGreaterThan(5);
        return;
      }
      expect(result.path.startsWith('/')).toBe(true);
      expect(result.path).not.toContain('?');
      const resolved = new URL(`/v1/metadata${result.path}`, 'http://api').pathname;
      expect(resolved.startsWith('/v1/metadata/') || resolved === '/v1/metadata').toBe(true);
      expect(decodeURIComponent(result.path).split('/')).not.toContain('..');
    });
  });

  const identityNames = fc.constantFrom(
    'x-instance-id',
    'x-instance-id-signature',
    'x-instance-address',
    'x-instance-address-signature',
    'x-forwarded-for',
    'forwarded',
    'x-real-ip',
    'authorization',
    'cookie',
    'host',
    'x-aws-ec2-metadata-token',
    'x-aws-ec2-metadata-token-ttl-seconds',
    'accept',
    'user-agent',
  );
  const headerValue = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ minLength: 1020, maxLength: 1100 }));

  it('forwardableHeaders passes only the allowlist, bounded, whatever the instance sends', async () => {
    const allow = new Set([
      'Accept',
      'User-Agent',
      'If-None-Match',
      'X-aws-ec2-metadata-token',
      'X-aws-ec2-metadata-token-ttl-seconds',
    ]);
    await runCorpus(
      'metadata-proxy request headers',
      fc.dictionary(
        fc.oneof(identityNames, fc.string({ maxLength: 12 })),
        fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 })),
      ),
      (headers) => {
        const result = forwardableHeaders(headers);
        if (!result.ok) {
          expect(result.reason).toMatch(/more than once|longer than/);
          return;
        }
        for (const [name, value] of Object.entries(result.headers)) {
          expect(allow.has(name), name).toBe(true);
          expect(value.length).toBeLessThanOrEqual(1024);
        }
      },
    );
  });

  it('the option parsers accept a valid value or throw a ConfigError naming the flag', async () => {
    const parsers: Array<[string, (value: string) => unknown]> = [
      ['--listen', parseListen],
      ['--api', parseApiUrl],
      ['--cache-seconds', (v) => parseBoundedInteger('--cache-seconds', v, 0, 3600)],
      ['--secret-file', (v) => parseSecret(v, '/etc/cldist/proxy.secret')],
    ];
    const values = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        '169.254.169.254:80',
        '[fe80::a9fe:a9fe]:80',
        '::1:80',
        'localhost:80',
        '1.2.3.4:99999',
        'https://cldist.example.net/base/',
        'https://u:p@cldist.example.net',
        'ftp://x',
        'http://x/?q=1',
        '-1',
        '1e3',
        '0x10',
        '3601',
        ' 5 ',
        'a'.repeat(31),
        'b'.repeat(32),
        `${'c'.repeat(20)} ${'d'.repeat(20)}`,
      ),
    );
    await runCorpus(
      'metadata-proxy options',
      fc.tuple(fc.constantFrom(...parsers), values),
      ([[flag, parse], value]) => {
        try {
          parse(value);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as Error).message.startsWith(flag)).toBe(true);
          if (flag === '--secret-file' && value.trim().length >= 8) {
            expect((error as Error).message).not.toContain(value.trim());
          }
        }
      },
    );
  });

  describe('against the running proxy', () => {
    let api: ContractApi;
    let proxy: RunningProxy;
    let close: () => void;
    const secret = 'corpus-secret-0123456789abcdef0123456789';
    beforeAll(async () => {
      api = await startContractApi([secret]);
      api.addresses.set('127.0.0.31', 'i-corpus');
      api.respond = (instanceId) => ({ status: 200, body: instanceId });
      const client = createApiClient({ api: new URL(api.url), secret: () => secret, timeoutMs: 5000 });
      close = client.close;
      proxy = await startMetadataProxy(
        {
          host: '127.0.0.1',
          port: 0,
          maxResponseBytes: 65_536,
          requestTimeoutMs: 5000,
          shutdownGraceMs: 500,
        },
        {
          api: client,
          cache: createInstanceCache({ ttlMs: 60_000, negativeTtlMs: 1000, maxEntries: 10 }),
          logger: silentLogger,
        },
      );
    });
    afterAll(async () => {
      await proxy.close();
      close();
      await api.close();
    });

    const printable = fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 80,
    });

    it('answers every forged identity with the caller’s own data or a 4xx, never another instance', async () => {
      await runCorpus(
        'metadata-proxy forged identity',
        fc.record({
          id: printable,
          signature: printable,
          forwardedFor: printable,
          token: printable,
          path: fc.array(segment, { maxLength: 5 }).map((parts) => `/${parts.join('/')}`),
        }),
        async (forged) => {
          const before = api.seen.length;
          const answer = await within(
            5000,
            'a forged request',
            ask(`${proxy.url}${forged.path.replace(/[ #?]/g, '')}`, {
              from: '127.0.0.31',
              headers: {
                'X-Instance-ID': forged.id,
                'X-Instance-ID-Signature': forged.signature,
                'X-Forwarded-For': forged.forwardedFor,
                'X-aws-ec2-metadata-token': forged.token,
              },
            }),
          );
          expect(answer.status === 200 || (answer.status >= 400 && answer.status < 500)).toBe(true);
          if (answer.status === 200) expect(answer.body).toBe('i-corpus');
          for (const seen of api.seen.slice(before)) {
            expect(seen.headers['x-forwarded-for']).toBeUndefined();
            if (!seen.url.startsWith('/v1/metadata/instance-id')) {
              expect(seen.headers['x-instance-id']).toBe('i-corpus');
            }
          }
        },
        200,
      );
    });
  });
});
