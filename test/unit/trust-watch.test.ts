import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../local/runtime/log.ts';
import { watchTrustFiles } from '../../local/runtime/trust-watch.ts';
import { fileTrustSource } from '../../shared/trust/file-source.ts';
import { loadTrustedKeyring, type RefreshReason } from '../../shared/trust/trusted-keyring.ts';
import { loadKeyring } from '../../shared/verify/keyring.ts';
import { waitFor } from '../e2e/serve-harness.ts';
import { fingerprint, makeKey } from '../support/pgp-fixtures.ts';

const quiet = createLogger({ format: 'json', write: () => {} });

describe('watchTrustFiles', () => {
  let dir: string;
  let armored: string;
  let primary: string;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const key = await makeKey({ name: 'Watched' });
    armored = key.toPublic().armor();
    primary = fingerprint(key);
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function watched(timing: { debounceMs: number; statEveryMs: number }) {
    dir = await mkdtemp(join(tmpdir(), 'cldist-trust-watch-'));
    const keyringFile = join(dir, 'keyring.asc');
    const trustFile = join(dir, 'trust', 'keyring.asc');
    await writeFile(keyringFile, armored);
    const reloads: RefreshReason[] = [];
    const failures: RefreshReason[] = [];
    const trust = await loadTrustedKeyring({
      source: fileTrustSource({ keyringFiles: [keyringFile], trustFile }),
      build: (inputs) =>
        loadKeyring(
          inputs.map((i) => i.text),
          [primary],
        ),
      clock: () => new Date(),
      minRefreshMs: 10_000,
      maxAgeMs: 3_600_000,
      onReloaded: (_version, reason) => reloads.push(reason),
      onReloadFailed: (_error, reason) => failures.push(reason),
    });
    stops.push(await watchTrustFiles({ trust, files: [keyringFile, trustFile], logger: quiet, ...timing }));
    return { trust, trustFile, reloads, failures };
  }

  it('reloads on a file event, after the debounce, with no stat loop', async () => {
    const { trust, trustFile, reloads } = await watched({ debounceMs: 20, statEveryMs: 3_600_000 });
    const before = trust.peek().version;
    await writeFile(trustFile, armored);
    await waitFor(() => trust.peek().version !== before, 'the watch to reload the trust', 10_000);
    expect(reloads).toEqual(['watch']);
  });

  it('reloads through the stat loop when no file event arrives (a debounce that never ends stands for a lost event)', async () => {
    const { trust, trustFile, reloads } = await watched({ debounceMs: 3_600_000, statEveryMs: 50 });
    const before = trust.peek().version;
    await writeFile(trustFile, armored);
    await waitFor(() => trust.peek().version !== before, 'the stat loop to reload the trust', 10_000);
    expect(reloads).toEqual(['watch']);
  });

  it('keeps the keyring in force when the trust file is replaced by garbage', async () => {
    const { trust, trustFile, failures } = await watched({ debounceMs: 3_600_000, statEveryMs: 50 });
    await writeFile(trustFile, armored);
    await waitFor(() => trust.peek().keyring.keys.length === 2, 'the first reload', 10_000);
    const good = trust.peek();
    await writeFile(trustFile, 'not a key');
    await waitFor(() => failures.includes('watch'), 'the stat loop to try the garbage', 10_000);
    expect(trust.peek()).toBe(good);
  });
});
