import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { imdsTokenValid, parseTokenTtl, processImdsKeys } from '../../shared/metadata/imds-token.ts';
import {
  canonicalAddress,
  hostnameProblem,
  instanceParamsShape,
  sshKeyProblem,
} from '../../shared/metadata/params.ts';
import { signInstanceId } from '../../shared/metadata/proxy-signature.ts';
import { type MetadataHarness, metadataHarness, userIgnition } from '../support/metadata-harness.ts';
import { ed25519PublicKey, rsaPublicKey } from '../support/ssh-keys.ts';
import { reportTallies, runCorpus, within } from './corpus-support.ts';

const secret = 'corpus-proxy-secret-0123456789';
const paramsSchema = z.strictObject(instanceParamsShape);

const addressText = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.string({ maxLength: 45 }),
  fc.constantFrom(
    '::ffff:10.0.0.1',
    'fe80::1%eth0',
    '1.2.3',
    '01.2.3.4',
    '1.2.3.4 ',
    '[::1]',
    '::',
    '0.0.0.0',
  ),
  fc.tuple(fc.ipV4(), fc.string({ maxLength: 4 })).map(([ip, tail]) => ip + tail),
);

/** Valid keys with one thing broken: a character flipped, cut short, another type, odd spacing. */
const sshKeyText = fc.oneof(
  fc.constant(null).map(() => ed25519PublicKey()),
  fc.constant(null).map(() => rsaPublicKey()),
  fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 1 })).map(([at, ch]) => {
    const key = ed25519PublicKey();
    const i = at % key.length;
    return key.slice(0, i) + ch + key.slice(i + 1);
  }),
  fc.nat().map((cut) => {
    const key = rsaPublicKey();
    return key.slice(0, cut % key.length);
  }),
  fc
    .constantFrom('ssh-dss', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'x', '')
    .map((type) => ed25519PublicKey().replace('ssh-ed25519', type)),
  fc.string({ maxLength: 200 }),
  fc.base64String({ maxLength: 200 }).map((data) => `ssh-ed25519 ${data}`),
);

const hostText = fc.oneof(
  fc.domain(),
  fc.string({ maxLength: 300 }),
  fc.stringMatching(/^[a-z0-9.-]{0,70}$/),
  fc.integer({ min: 240, max: 270 }).map((n) => 'a.'.repeat(n).slice(0, n)),
);

const attributeRecord = fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 }), {
  maxKeys: 6,
});

describe('bad-input corpus: metadata inputs', () => {
  let h: MetadataHarness;

  beforeAll(async () => {
    h = await metadataHarness({ proxySecrets: [secret] });
    await h.put('corpus-1', { ignition: userIgnition('c'), ips: ['10.9.0.1'] });
  });

  afterAll(async () => {
    reportTallies('metadata-inputs');
    await h?.close();
  });

  it('addresses: canonical or refused, never thrown, and canonical twice is canonical once', async () => {
    await runCorpus('address', addressText, (text) => {
      const canonical = canonicalAddress(text);
      if (canonical !== undefined) expect(canonicalAddress(canonical)).toBe(canonical);
      const parsed = paramsSchema.safeParse({ ips: [text] });
      if (!parsed.success) expect(parsed.error.issues[0]?.path).toEqual(['ips', 0]);
      else expect(parsed.data.ips).toEqual([canonical]);
    });
  });

  it('ssh keys: a reason or a well-formed key whose data names its type', async () => {
    await runCorpus('ssh key', sshKeyText, (text) => {
      const problem = sshKeyProblem(text);
      if (problem === undefined) {
        const [type, data] = text.trim().split(/ +/);
        const blob = Buffer.from(data ?? '', 'base64');
        expect(blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1')).toBe(type);
      } else {
        expect(problem.length).toBeGreaterThan(0);
        expect(problem.length).toBeLessThan(300);
      }
    });
  });

  it('hostnames and attributes: refused with the field path, never thrown', async () => {
    await runCorpus('hostname', hostText, (text) => {
      const parsed = paramsSchema.safeParse({ hostname: text });
      expect(parsed.success).toBe(hostnameProblem(text) === undefined);
      if (parsed.success) expect(text.length).toBeLessThanOrEqual(253);
    });
    await runCorpus('attributes', attributeRecord, (record) => {
      const parsed = paramsSchema.safeParse({ attributes: record });
      if (!parsed.success) for (const issue of parsed.error.issues) expect(issue.path[0]).toBe('attributes');
    });
  });

  it('IMDS TTL headers and tokens: only whole seconds in range, no forged token valid', async () => {
    const keys = processImdsKeys();
    await runCorpus(
      'imds ttl header',
      fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String)),
      (text) => {
        const ttl = parseTokenTtl(text);
        if (ttl !== undefined) expect(ttl >= 1 && ttl <= 21_600 && /^\s*\d+\s*$/.test(text)).toBe(true);
      },
    );
    const token = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.tuple(fc.nat(), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)).map(([n, mac]) => `v1.${n}.${mac}`),
    );
    await runCorpus('imds token', token, (text) => {
      expect(imdsTokenValid(keys, text, 'address:10.9.0.1', new Date('2026-06-01T00:00:00Z'))).toBe(false);
    });
  });

  it('IMDS requests with arbitrary headers: a 2xx/4xx answer, never a 500 or another instance', async () => {
    const headers = fc.record(
      {
        ttl: fc.string({ maxLength: 10 }),
        token: fc.string({ maxLength: 60 }),
        forwarded: fc.oneof(fc.constant(undefined), fc.ipV4()),
      },
      { requiredKeys: [] },
    );
    await runCorpus(
      'imds request',
      fc.tuple(fc.constantFrom('PUT', 'GET'), headers),
      async ([method, sent]) => {
        const init: Record<string, string> = {};
        if (sent.ttl !== undefined) init['X-aws-ec2-metadata-token-ttl-seconds'] = sent.ttl;
        if (sent.token !== undefined) init['X-aws-ec2-metadata-token'] = sent.token;
        if (sent.forwarded !== undefined) init['X-Forwarded-For'] = sent.forwarded;
        const path = method === 'PUT' ? '/latest/api/token' : '/latest/meta-data/instance-id';
        const response = await within(
          5000,
          `${method} ${path}`,
          h.fromAddress('10.9.0.2', path, { method, headers: init }),
        );
        expect([200, 400, 401, 403, 404]).toContain(response.status);
        if (method === 'GET') expect(response.status).not.toBe(200);
      },
    );
  });

  it('proxy headers: only a right signature over the same id is served', async () => {
    const proxy = fc.record({
      id: fc.oneof(fc.constant('corpus-1'), fc.string({ maxLength: 140 })),
      signature: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string({ maxLength: 80 })),
      address: fc.oneof(fc.ipV4(), fc.string({ maxLength: 50 })),
    });
    await runCorpus('proxy headers', proxy, async (sent) => {
      const safe = (value: string) => value.replace(/[^\x20-\x7e]/g, '');
      const id = safe(sent.id);
      const response = await within(
        5000,
        'proxied request',
        Promise.resolve(
          h.api.request('/v1/metadata/latest/meta-data/instance-id', {
            headers: { 'X-Instance-ID': id, 'X-Instance-ID-Signature': safe(sent.signature) },
          }),
        ),
      );
      const expected = safe(sent.signature).toLowerCase() === signInstanceId(secret, id) ? [200, 404] : [403];
      expect(expected).toContain(response.status);
      const lookup = await h.api.request('/v1/metadata/instance-id', {
        headers: {
          'X-Instance-Address': safe(sent.address),
          'X-Instance-Address-Signature': safe(sent.signature),
        },
      });
      expect([400, 403]).toContain(lookup.status);
    });
  });
});
