import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelArgPattern, profileBodySchema } from '../../shared/boot/profiles.ts';
import { ipxeBootScript } from '../../shared/boot/scripts.ts';
import {
  bootSelectorShape,
  normalizeMac,
  normalizeSerial,
  normalizeUuid,
  requestFacts,
} from '../../shared/boot/selectors.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

const hex = fc.constantFrom(...'0123456789abcdefABCDEF'.split(''));
const macLike = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc
    .tuple(
      fc.array(fc.array(hex, { minLength: 2, maxLength: 2 }), { minLength: 6, maxLength: 6 }),
      fc.constantFrom(':', '-', '', '.'),
    )
    .map(([octets, sep]) => octets.map((o) => o.join('')).join(sep)),
  fc.constantFrom(
    '01:00:5e:00:00:01',
    'ff-ff-ff-ff-ff-ff',
    '00:00:00:00:00:00',
    '52:54:00:aa:bb',
    '52:54-00:aa:bb:cc',
  ),
);
const uuidLike = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .tuple(fc.uuid(), fc.constantFrom('upper', 'braces', 'bare'))
    .map(([u, form]) =>
      form === 'upper' ? u.toUpperCase() : form === 'braces' ? `{${u}}` : u.replaceAll('-', ''),
    ),
  fc.constantFrom(
    '00000000-0000-0000-0000-000000000000',
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    '0-0-0-0-0',
  ),
);
const anyText = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }));

function field(
  schema: {
    safeParse(v: unknown): { success: boolean; data?: unknown; error?: { issues: { message: string }[] } };
  },
  value: unknown,
) {
  return schema.safeParse(value);
}

describe('bad-input corpus: boot selectors, request facts and profile bodies', () => {
  afterAll(() => reportTallies('boot-inputs'));

  it('mac: hexhyp lower case out, or an error that quotes the value and says what a MAC looks like', async () => {
    await runCorpus('mac', macLike, (text) => {
      const result = field(bootSelectorShape.mac, text);
      if (result.success) {
        expect(result.data).toMatch(/^([0-9a-f]{2}-){5}[0-9a-f]{2}$/);
        expect(normalizeMac(String(result.data))).toBe(result.data);
      } else {
        expect(result.error?.issues[0]?.message).toMatch(/is not a MAC address|multicast|all-zero/);
      }
    });
  });

  it('uuid: 8-4-4-4-12 lower case, never a firmware placeholder, or an error naming the form', async () => {
    await runCorpus('uuid', uuidLike, (text) => {
      const result = field(bootSelectorShape.uuid, text);
      if (result.success) {
        expect(result.data).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        expect(normalizeUuid(String(result.data))).toBe(result.data);
      } else {
        expect(result.error?.issues[0]?.message).toMatch(/is not a UUID|placeholder/);
      }
    });
  });

  it('serial: printable ASCII of 1 to 64 characters, or an error', async () => {
    await runCorpus('serial', anyText, (text) => {
      const result = field(bootSelectorShape.serial, text);
      if (result.success) {
        expect(result.data).toMatch(/^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$/);
        expect(normalizeSerial(String(result.data))).toBe(result.data);
      } else {
        expect(result.error?.issues[0]?.message).toMatch(/is not a serial number|placeholder/);
      }
    });
  });

  it('labels: keys and values that travel in a URL unescaped, or an error at the bad key', async () => {
    await runCorpus(
      'labels',
      fc.dictionary(
        fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('mac', 'rack', 'token')),
        anyText,
        { maxKeys: 20 },
      ),
      (labels) => {
        const result = field(bootSelectorShape.labels, labels);
        if (result.success) {
          for (const [key, value] of Object.entries(result.data as Record<string, string>)) {
            expect(encodeURIComponent(key)).toBe(key);
            expect(encodeURIComponent(value)).toBe(value.replaceAll(':', '%3A'));
          }
        } else {
          expect(result.error?.issues.length).toBeGreaterThan(0);
        }
      },
    );
  });

  it('request facts: any query reads as facts without throwing; nothing unsafe reaches a script', async () => {
    await runCorpus(
      'requestFacts',
      fc.dictionary(
        fc.oneof(fc.constantFrom('mac', 'uuid', 'serial', 'hostname'), fc.string({ maxLength: 8 })),
        anyText,
        { maxKeys: 30 },
      ),
      (query) => {
        const facts = requestFacts(query);
        expect(Object.keys(facts.labels).length).toBeLessThanOrEqual(16);
        if (facts.mac !== undefined) expect(facts.mac).toMatch(/^([0-9a-f]{2}-){5}[0-9a-f]{2}$/);
        for (const value of Object.values(facts.labels)) expect(value).toMatch(/^[A-Za-z0-9._:-]+$/);
      },
    );
  });

  it('profile bodies: a profile whose every kernel argument is safe in both loaders, or issues with a path', async () => {
    const body = fc.record(
      {
        channel: fc.oneof(fc.constantFrom('stable', 'beta'), fc.string({ maxLength: 10 })),
        board: fc.oneof(fc.constant('amd64-usr'), fc.string({ maxLength: 10 })),
        version: fc.oneof(
          fc.constantFrom('current', '4081.2.0', '4081.2', '../x'),
          fc.string({ maxLength: 10 }),
        ),
        kernelArgs: fc.array(
          fc.oneof(
            fc.constantFrom(
              'flatcar.autologin',
              'console=ttyS0,115200n8',
              'a b',
              '$x',
              "'",
              'ignition.platform.id=x',
            ),
            anyText,
          ),
          { maxLength: 5 },
        ),
        install: fc.oneof(
          fc.constant(undefined),
          fc.record({
            disk: fc.oneof(fc.constantFrom('/dev/sda', '/dev/../etc', 'sda'), fc.string({ maxLength: 12 })),
          }),
        ),
        extra: fc.oneof(fc.constant(undefined), fc.anything()),
      },
      { requiredKeys: [] },
    );
    await runCorpus('profileBody', body, (value) => {
      const result = profileBodySchema.safeParse(value);
      if (result.success) {
        for (const arg of result.data.kernelArgs) expect(arg).toMatch(kernelArgPattern);
        const script = ipxeBootScript({
          title: 'x',
          kernelUrl: 'http://m/k',
          initramfsUrl: 'http://m/i',
          initramfsName: 'i',
          kernelArgs: result.data.kernelArgs,
        });
        expect(script.split('\n')).toHaveLength(6);
        expect(script).not.toMatch(/\$|'|"/);
      } else {
        for (const issue of result.error.issues) expect(issue.message.length).toBeGreaterThan(0);
      }
    });
  });
});
