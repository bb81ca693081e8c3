import * as openpgp from 'openpgp';
import { type RotationKeys, rotationKeys } from '../../local/sim-origin/rotation.ts';
import type { ArtifactRecord, Ledger, ReleaseRef } from '../../shared/ledger/ledger.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import type { TrustSource } from '../../shared/trust/source.ts';
import { loadTrustedKeyring, type TrustedKeyring } from '../../shared/trust/trusted-keyring.ts';
import { loadKeyring } from '../../shared/verify/keyring.ts';
import { forkRandom, randomInt } from './plan.ts';

/** The rotation fault: from release `rotateAt` on, the upstream signs with a subkey the mirror does not have. */
export interface RotationPlan {
  /** Index of the first release signed by the new subkey. */
  rotateAt: number;
}

/** Drawn from its own fork of the seed, so adding it shifts nothing else of the plan. */
export function planRotation(seed: number, releaseCount: number): RotationPlan | undefined {
  if (releaseCount < 2) return undefined;
  return { rotateAt: randomInt(forkRandom(seed, 'rotation'), 1, releaseCount - 1) };
}

export interface RotationFault {
  plan: RotationPlan;
  keys: RotationKeys;
  /** The mirror's trust: the old subkey only, until `upload`. */
  trust: TrustedKeyring;
  /** The signing subkey (fingerprint) of a release. */
  signerFor(releaseIndex: number): string;
  /** The operator uploads the primary key with the new subkey, late: after the mirror refused with it. */
  upload(): void;
  readonly uploaded: boolean;
}

/** A key like upstream's with a second signing subkey, and a mirror trust that learns it only on upload. */
export async function startRotation(plan: RotationPlan): Promise<RotationFault> {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'cldist chaos rotation key', email: 'chaos@cldist.invalid' }],
    subkeys: [{ sign: true }, { sign: true }],
    format: 'object',
  });
  const keys = rotationKeys(privateKey);
  let uploaded = false;
  const source: TrustSource = {
    location: 'chaos://trust/keyring.asc',
    read: async (known) => {
      const version = uploaded ? 'after' : 'before';
      if (known === version) return { changed: false };
      const text = uploaded ? keys.afterArmored : keys.beforeArmored;
      return { changed: true, version, inputs: [{ label: `chaos trust (${version})`, text }] };
    },
  };
  const trust = await loadTrustedKeyring({
    source,
    build: (inputs) =>
      loadKeyring(
        inputs.map((i) => i.text),
        [keys.primaryFingerprint],
      ),
    clock: () => new Date(),
    minRefreshMs: 10_000,
    maxAgeMs: 300_000,
  });
  return {
    plan,
    keys,
    trust,
    signerFor: (index) => (index >= plan.rotateAt ? keys.newSubkey.fingerprint : keys.oldSubkey.fingerprint),
    upload() {
      uploaded = true;
    },
    get uploaded() {
      return uploaded;
    },
  };
}

export interface RotationInvariant {
  name: string;
  pass: boolean;
  detail: string;
  violations: string[];
}

/**
 * Once the key is uploaded every release is mirrored (the run's own invariants check that), and nothing is
 * ever refused for good, or left waiting, because its signer was unknown.
 */
export function checkRotation(
  fault: RotationFault,
  records: ArtifactRecord[],
  events: CldistEvent[],
): RotationInvariant {
  const violations: string[] = [];
  for (const record of records) {
    const id = `${record.channel}/${record.version}/${record.artifact}`;
    if (record.state === 'awaiting_trust') violations.push(`${id} still awaiting trust`);
    if (record.state === 'failed_verification' && /unknown-key/.test(record.lastError ?? '')) {
      violations.push(`${id} refused for good for unknown-key`);
    }
  }
  for (const event of events) {
    if (event.event === 'artifact.verification_failed' && event.detail.reason === 'unknown-key') {
      violations.push(
        `${event.channel}/${event.version}/${event.artifact ?? ''} alerted as failed for unknown-key`,
      );
    }
  }
  const alerts = events.filter((e) => e.event === 'signing_key.unknown');
  if (!fault.uploaded) violations.push('the rotated key was never uploaded');
  return {
    name: 'a rotated subkey uploaded late refuses nothing for good',
    pass: violations.length === 0,
    detail: `new subkey ${fault.keys.newSubkey.keyId} from release ${fault.plan.rotateAt + 1}; ${alerts.length} unknown-key alert(s)`,
    violations,
  };
}

/** Every artifact record of the run, for `checkRotation`. */
export async function allRecords(ledger: Ledger, releases: ReleaseRef[]): Promise<ArtifactRecord[]> {
  const details = await Promise.all(releases.map((r) => ledger.getRelease(r)));
  return details.flatMap((d) => d?.artifactStates ?? []);
}
