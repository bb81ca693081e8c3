import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError, PermanentError } from '../../shared/errors.ts';
import { mirrorJobSchema, parseMirrorJob } from '../../shared/messages.ts';
import { type TransferDeps, transferArtifact } from '../../shared/mirror/worker.ts';
import { expectEachJobFieldChecked, reportTallies, runCorpus } from './corpus-support.ts';

afterAll(() => reportTallies('config-and-messages'));

const validJob = {
  v: 1,
  source: 'flatcar',
  channel: 'stable',
  board: 'amd64-usr',
  version: '3510.2.8',
  artifact: 'flatcar_production_pxe.vmlinuz',
  url: 'https://stable.release.flatcar-linux.net/amd64-usr/3510.2.8/flatcar_production_pxe.vmlinuz',
  signatureUrl:
    'https://stable.release.flatcar-linux.net/amd64-usr/3510.2.8/flatcar_production_pxe.vmlinuz.sig',
};

describe('bad-input corpus: configuration', () => {
  it('any JSON value is either a valid config or a ConfigError naming a field', async () => {
    await runCorpus('configuration', fc.jsonValue(), (value) => {
      try {
        parseConfig(value);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toMatch(/^config is invalid:\n\S.*: /);
      }
    });
  });

  it('a mutated field of a good config is refused with that field named', async () => {
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
    await runCorpus(
      'configuration',
      fc.tuple(
        fc.constantFrom(...fields),
        fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)),
      ),
      ([field, junk]) => {
        expect(() => parseConfig({ [field]: junk })).toThrow(new RegExp(`^config is invalid:\\n${field}`));
      },
    );
  });
});

describe('bad-input corpus: queue messages', () => {
  it('arbitrary strings never crash the parser: a job or a malformed-message error', async () => {
    await runCorpus('queue message', fc.oneof(fc.string(), fc.json()), (body) => {
      try {
        const job = parseMirrorJob(body);
        expect(mirrorJobSchema.safeParse(job).success).toBe(true);
      } catch (error) {
        expect(error).toBeInstanceOf(PermanentError);
        expect((error as PermanentError).code).toBe('malformed-message');
      }
    });
  });

  it('any single field replaced by junk is refused and the field is named', async () => {
    await expectEachJobFieldChecked('queue message', validJob, parseMirrorJob);
  });

  it('path-like versions and artifact names can never reach a store key', async () => {
    await runCorpus('queue message', fc.string(), (text) => {
      const body = JSON.stringify({ ...validJob, version: text });
      let accepted = true;
      try {
        parseMirrorJob(body);
      } catch {
        accepted = false;
      }
      if (accepted) expect(text).toMatch(/^[0-9]+(\.[0-9]+)*$/);
    });
  });
});

describe('bad-input corpus: job URLs that try to steer the worker', () => {
  const config = parseConfig({});
  /** Any use of a dependency fails the property: a steered job must be refused before any I/O. */
  const untouchable = new Proxy({} as TransferDeps, {
    get(_target, property) {
      throw new Error(`the worker used deps.${String(property)} for a job it should have refused`);
    },
  });
  const steer = fc.constantFrom(
    (url: string) => url.replace('https://', 'http://'),
    (url: string) => url.replace('.net/', '.net.evil.example/'),
    (url: string) => url.replace('https://', 'https://stable.release.flatcar-linux.net@'),
    (url: string) => url.replace('.net/', '.net:8443/'),
    (url: string) => url.replace('/amd64-usr/', '/amd64-usr/../amd64-usr/'),
    (url: string) => url.replace('/amd64-usr/', '/amd64-usr/%2e%2e/amd64-usr/'),
    (url: string) => url.replace('/amd64-usr/', '/x/../amd64-usr/'),
    (url: string) => url.replace('/amd64-usr/', '//amd64-usr/'),
    (url: string) => url.replace('stable.', 'STABLE.'),
    (url: string) => `${url}?x=1`,
    (url: string) => `${url}#frag`,
    (url: string) => `${url}/`,
    (url: string) => url.replace('stable.', 'beta.'),
    (url: string) => url.replace('https://stable.release.flatcar-linux.net', 'http://127.0.0.1:9'),
  );

  it('a job whose URL is not the configured location is refused before any download', async () => {
    await runCorpus(
      'queue message',
      fc.tuple(steer, fc.constantFrom('url', 'signatureUrl', 'both')),
      async ([change, which]) => {
        const job = {
          ...validJob,
          ...(which !== 'signatureUrl' ? { url: change(validJob.url) } : {}),
          ...(which !== 'url' ? { signatureUrl: change(validJob.signatureUrl) } : {}),
        };
        let parsed: ReturnType<typeof parseMirrorJob>;
        try {
          parsed = parseMirrorJob(JSON.stringify(job));
        } catch (error) {
          expect((error as PermanentError).code).toBe('malformed-message');
          return;
        }
        const refusal = await transferArtifact(parsed, untouchable, config).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refusal).toBeInstanceOf(PermanentError);
        expect((refusal as PermanentError).code).toBe('unexpected-url');
      },
    );
  });
});
