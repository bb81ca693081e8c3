import { InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseReleaseArgument } from '../../local/commands/releases.ts';
import { createReleaseRoutes } from '../../shared/api/release-routes.ts';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import type { ReleaseDetail } from '../../shared/ledger/ledger.ts';
import { publicKeyBlocks } from '../../shared/trust/source.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

const segmentish = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('stable', 'amd64-usr', '4081.2.0', '..', '', '%2F', 'a/b', 'Stable', '1.0-rc', ' 1.0'),
);

describe('bad-input corpus: release admin inputs and the trust text', () => {
  afterAll(() => reportTallies('release-admin-input'));

  it('parseReleaseArgument: a usage error naming what is wrong, or a plain SOURCE/CHANNEL/BOARD/VERSION', async () => {
    await runCorpus(
      'parseReleaseArgument',
      fc.oneof(
        fc.string({ maxLength: 60 }),
        fc.tuple(segmentish, segmentish, segmentish, segmentish).map((p) => p.join('/')),
      ),
      (text) => {
        try {
          const ref = parseReleaseArgument(text);
          expect(`${ref.source}/${ref.channel}/${ref.board}/${ref.version}`).toBe(text);
          expect(text).not.toContain('..');
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect((error as Error).message).toMatch(
            /SOURCE\/CHANNEL\/BOARD\/VERSION|source "|channel "|board "|version "/,
          );
        }
      },
    );
  });

  it('publicKeyBlocks: a ConfigError naming the object, or the armored blocks', async () => {
    const block = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----';
    await runCorpus(
      'publicKeyBlocks',
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc
          .tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }))
          .map(([a, b]) => `${a}${block}${b}`),
        fc.string({ maxLength: 40 }).map((a) => `${a}-----BEGIN PGP PRIVATE KEY BLOCK-----`),
      ),
      (text) => {
        try {
          const blocks = publicKeyBlocks(text, 's3://bucket/trust/keyring.asc');
          for (const found of blocks) expect(found).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
          expect(blocks.length === 0).toBe(text.trim() === '');
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as Error).message).toContain('s3://bucket/trust/keyring.asc');
        }
      },
    );
  });

  it('the release routes: a 4xx naming the field for any path or body, never a 500', async () => {
    const detail: ReleaseDetail = {
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
      version: '4081.2.0',
      claimedAt: '2026-11-01T00:00:00.000Z',
      artifacts: ['version.txt'],
      required: ['version.txt'],
      artifactStates: [],
    };
    const app = createReleaseRoutes(
      {
        ledger: {
          listReleases: async () => [detail],
          listPruning: async () => [],
          getRelease: async (ref) => (ref.version === detail.version ? detail : undefined),
          requeueArtifact: async () => false,
        },
        jobs: { sendJobs: async () => {} },
      },
      parseConfig({}),
      async (_c, next) => {
        await next();
      },
    );
    await runCorpus(
      'release routes',
      fc.tuple(segmentish, segmentish, segmentish, fc.oneof(fc.string({ maxLength: 40 }), fc.json())),
      async ([channel, board, version, body]) => {
        const path = [channel, board, version].map(encodeURIComponent).join('/');
        const retry = await app.request(`/v1/releases/${path}/retry`, { method: 'POST', body });
        expect([200, 400, 404, 413]).toContain(retry.status);
        if (retry.status === 400)
          expect(await retry.json()).toMatchObject({ error: { path: expect.any(String) } });
        const list = await app.request(
          `/v1/releases?state=${encodeURIComponent(version)}&channel=${encodeURIComponent(channel)}`,
        );
        expect([200, 400]).toContain(list.status);
      },
    );
  });
});
