import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustedChecker } from '../../shared/mirror/signatures.ts';
import { fileTrustSource } from '../../shared/trust/file-source.ts';
import type { TrustRead, TrustSource } from '../../shared/trust/source.ts';
import { loadTrustedKeyring, type RefreshReason } from '../../shared/trust/trusted-keyring.ts';
import { loadKeyring } from '../../shared/verify/keyring.ts';
import { SignatureError } from '../../shared/verify/types.ts';
import {
  at,
  chunksOf,
  DAY,
  fingerprint,
  makeKey,
  signDetached,
  subkeyPacket,
} from '../support/pgp-fixtures.ts';

/** The key as imported before and after its rotation: the primary with one, then both signing subkeys. */
function publicWith(key: PrivateKey, count: number): string {
  const copy = key.toPublic();
  copy.subkeys.splice(count);
  return copy.armor();
}

/** A trust source in memory that counts its reads and can hold them open, to observe sharing. */
function memorySource(initial: string) {
  let text = initial;
  let version = 1;
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const reads: (string | undefined)[] = [];
  const source: TrustSource = {
    location: 'memory://trust',
    async read(known): Promise<TrustRead> {
      reads.push(known);
      await gate;
      if (text === 'broken') throw new Error('the trust object is unreadable');
      return known === `v${version}`
        ? { changed: false }
        : { changed: true, version: `v${version}`, inputs: [{ label: 'memory', text }] };
    },
  };
  return {
    source,
    reads,
    set(next: string) {
      text = next;
      version++;
    },
    hold() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    release() {
      open?.();
      gate = undefined;
    },
  };
}

function manualClock(start = at(390)) {
  let now = start.getTime();
  return { clock: () => new Date(now), advance: (ms: number) => (now += ms) };
}

describe('the trusted keyring and the checker over it', () => {
  let key: PrivateKey;
  let primary: string;
  const data = new TextEncoder().encode('release bytes');

  beforeAll(async () => {
    key = await makeKey({
      name: 'Trust Reader',
      subkeys: [
        { sign: true, date: at(0), keyExpirationTime: 400 * (DAY / 1000) },
        { sign: true, date: at(300) },
      ],
    });
    primary = fingerprint(key);
  });

  async function trustOver(source: TrustSource, clock: () => Date, failures: RefreshReason[] = []) {
    return loadTrustedKeyring({
      source,
      build: (inputs) =>
        loadKeyring(
          inputs.map((i) => i.text),
          [primary],
        ),
      clock,
      minRefreshMs: 10_000,
      maxAgeMs: 300_000,
      onReloadFailed: (_error, reason) => failures.push(reason),
    });
  }

  const signedByNew = () => signDetached(subkeyPacket(key, 1), data, { date: at(389) });
  const options = () => ({ now: at(390), maxClockSkewSeconds: 300 });

  it('re-reads the trust for an unknown signer and verifies with the rotated key', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock } = manualClock();
    const checker = trustedChecker(await trustOver(memory.source, clock));
    memory.set(publicWith(key, 2));
    const verified = await checker.verify(chunksOf(data), await signedByNew(), options());
    expect(verified.signingKeyFingerprint).toBe(fingerprint(key.subkeys[1] ?? key));
    expect(memory.reads).toEqual([undefined, 'v1']);
  });

  it('refuses as unknown-key, naming the key ID and the trust version, when the trust does not have it', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock } = manualClock();
    const checker = trustedChecker(await trustOver(memory.source, clock));
    const refusal = await checker
      .verify(chunksOf(data), await signedByNew(), options())
      .catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(SignatureError);
    expect(refusal).toMatchObject({
      reason: 'unknown-key',
      issuer: key.subkeys[1]?.getKeyID().toHex().toUpperCase(),
      trustVersion: 'v1',
    });
  });

  it('rate-limits the reads unknown signers cause, but not the poll’s', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock, advance } = manualClock();
    const trust = await trustOver(memory.source, clock);
    await trust.refresh('unknown-signer');
    await trust.refresh('unknown-signer');
    advance(9_999);
    await trust.refresh('unknown-signer');
    expect(memory.reads).toHaveLength(2);
    await trust.refresh('poll');
    expect(memory.reads).toHaveLength(3);
    advance(1);
    await trust.refresh('unknown-signer');
    expect(memory.reads).toHaveLength(4);
  });

  it('shares one read between callers that arrive while it is in flight', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock } = manualClock();
    const trust = await trustOver(memory.source, clock);
    memory.hold();
    const first = trust.refresh('poll');
    const second = trust.refresh('watch');
    const third = trust.refresh('unknown-signer');
    memory.release();
    await Promise.all([first, second, third]);
    expect(memory.reads).toEqual([undefined, 'v1']);
  });

  it('reads again once the keyring is older than maxAge, which bounds a warm function’s staleness', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock, advance } = manualClock();
    const trust = await trustOver(memory.source, clock);
    memory.set(publicWith(key, 2));
    advance(299_999);
    expect((await trust.current()).version).toBe('v1');
    advance(1);
    expect((await trust.current()).version).toBe('v2');
  });

  it('keeps the previous keyring when a reload fails, and reports it', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock } = manualClock();
    const failures: RefreshReason[] = [];
    const trust = await trustOver(memory.source, clock, failures);
    memory.set('broken');
    expect((await trust.refresh('poll')).version).toBe('v1');
    memory.set('not armored at all');
    expect((await trust.refresh('poll')).version).toBe('v1');
    expect(failures).toEqual(['poll', 'poll']);
  });

  it('computes the expiry warning from the current trust, so it clears once the rotated key is in', async () => {
    const memory = memorySource(publicWith(key, 1));
    const { clock } = manualClock();
    const checker = trustedChecker(await trustOver(memory.source, clock));
    const before = await checker.status(at(390), 30);
    expect(before.expiringSoon.map((k) => k.signingKeyFingerprint)).toEqual([
      fingerprint(key.subkeys[0] ?? key),
    ]);
    memory.set(publicWith(key, 2));
    await checker.refreshTrust();
    expect((await checker.status(at(390), 30)).expiringSoon).toEqual([]);
  });
});

describe('fileTrustSource', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-file-trust-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('versions the keyring files and trust file together, and reads nothing while their stats are unchanged', async () => {
    const key = await makeKey({ name: 'File Trust' });
    const keyringFile = join(dir, 'keyring.asc');
    const trustFile = join(dir, 'trust.asc');
    await writeFile(keyringFile, key.toPublic().armor());
    const source = fileTrustSource({ keyringFiles: [keyringFile], trustFile });
    const first = await source.read(undefined);
    if (!first.changed) throw new Error('first read must be a change');
    expect(first.inputs.map((i) => i.label)).toEqual([`keyring file ${keyringFile}`]);
    expect(await source.read(first.version)).toEqual({ changed: false });

    await writeFile(trustFile, key.toPublic().armor());
    const second = await source.read(first.version);
    expect(second.changed && second.inputs.map((i) => i.label)).toEqual([
      `keyring file ${keyringFile}`,
      `${trustFile} key #1`,
    ]);
    // Touched, same bytes: read again, same version.
    const later = new Date(Date.now() + 5_000);
    await utimes(trustFile, later, later);
    expect(await source.read(second.changed ? second.version : '')).toEqual({ changed: false });

    await writeFile(trustFile, 'garbage');
    await expect(source.read(undefined)).rejects.toThrow(`trust keyring ${trustFile} holds no`);
  });
});
