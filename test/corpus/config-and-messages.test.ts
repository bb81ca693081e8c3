import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError, PermanentError } from '../../shared/errors.ts';
import { mirrorJobSchema, parseMirrorJob } from '../../shared/messages.ts';

const runs = { numRuns: 300, seed: 20261126 };

const validJob = {
  v: 1,
  channel: 'stable',
  board: 'amd64-usr',
  version: '3510.2.8',
  artifact: 'flatcar_production_pxe.vmlinuz',
  url: 'https://stable.release.flatcar-linux.net/amd64-usr/3510.2.8/flatcar_production_pxe.vmlinuz',
  signatureUrl:
    'https://stable.release.flatcar-linux.net/amd64-usr/3510.2.8/flatcar_production_pxe.vmlinuz.sig',
};

describe('bad-input corpus: configuration', () => {
  it('any JSON value is either a valid config or a ConfigError naming a field', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseConfig(value);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as Error).message).toMatch(/^config is invalid:\n\S.*: /);
        }
      }),
      runs,
    );
  });

  it('a mutated field of a good config is refused with that field named', () => {
    const fields = [
      'channels',
      'boards',
      'artifacts',
      'keyring',
      'schedule',
      'store',
      'limits',
      'worker',
      'api',
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)),
        (field, junk) => {
          expect(() => parseConfig({ [field]: junk })).toThrow(new RegExp(`^config is invalid:\\n${field}`));
        },
      ),
      runs,
    );
  });
});

describe('bad-input corpus: queue messages', () => {
  it('arbitrary strings never crash the parser: a job or a malformed-message error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (body) => {
        try {
          const job = parseMirrorJob(body);
          expect(mirrorJobSchema.safeParse(job).success).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(PermanentError);
          expect((error as PermanentError).code).toBe('malformed-message');
        }
      }),
      runs,
    );
  });

  it('any single field replaced by junk is refused and the field is named', () => {
    const keys = Object.keys(validJob) as (keyof typeof validJob)[];
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.oneof(
          fc.constantFrom('../etc', 'a/b', '1.2 3', '', 'file:///etc/passwd', 'ftp://x/y', '3510..2'),
          fc.integer(),
          fc.constant(null),
        ),
        (key, junk) => {
          const body = JSON.stringify({ ...validJob, [key]: junk });
          expect(() => parseMirrorJob(body)).toThrow(new RegExp(`job message is invalid: ${key}: `));
        },
      ),
      runs,
    );
  });

  it('path-like versions and artifact names can never reach a store key', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const body = JSON.stringify({ ...validJob, version: text });
        let accepted = true;
        try {
          parseMirrorJob(body);
        } catch {
          accepted = false;
        }
        if (accepted) expect(text).toMatch(/^[0-9]+(\.[0-9]+)*$/);
      }),
      runs,
    );
  });
});
