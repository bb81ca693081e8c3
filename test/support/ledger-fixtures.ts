import {
  type ArtifactPlan,
  type ArtifactRef,
  createDynamoLedger,
  type Ledger,
} from '../../shared/ledger/ledger.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { emulatorClients, freshTable } from './emulators.ts';

/** One release of two required artifacts and an optional one, shared by the ledger's contract tests. */
export const release = { source: 'flatcar', channel: 'stable', board: 'amd64-usr', version: '3510.2.8' };

export const plans: ArtifactPlan[] = [
  { name: 'version.txt', required: true, url: 'http://o/v', signatureUrl: 'http://o/v.sig' },
  { name: 'image.bin', required: true, url: 'http://o/i', signatureUrl: 'http://o/i.sig' },
  { name: 'extra.txt', required: false, url: 'http://o/e', signatureUrl: 'http://o/e.sig' },
];

export const facts = {
  size: 10,
  sha512: 'ab'.repeat(64),
  signingKeyFingerprint: 'A'.repeat(40),
  primaryKeyFingerprint: 'B'.repeat(40),
  signatureCreated: '2026-01-01T00:00:00.000Z',
  hashAlgorithm: 'SHA512',
};

export const ref = (artifact: string): ArtifactRef => ({ ...release, artifact });

/** A new ledger table on dynalite, active, with a ledger over it that reads `clock`. */
export async function freshLedger(clock: () => Date): Promise<{ table: string; ledger: Ledger }> {
  const clients = emulatorClients();
  const table = await freshTable(clients);
  await tableActive(table);
  return { table, ledger: createDynamoLedger(clients.doc, table, { clock }) };
}
