import { enums, type SignaturePacket } from 'openpgp';
import { bindingAt, entryKey, type KeyEntry, type Keyring, latestBinding } from './keyring.ts';
import { SignatureError } from './types.ts';

/**
 * The trust rules a signature must pass before its data is read: who issued it, whether that key was
 * valid and allowed to sign when the signature was made, and whether it was revoked.
 */

const softRevocations = new Set<enums.reasonForRevocation | null>([
  enums.reasonForRevocation.keySuperseded,
  enums.reasonForRevocation.keyRetired,
]);

export function hashName(algorithm: enums.hash | null): string {
  if (algorithm === null) {
    return 'none';
  }
  try {
    return enums.read(enums.hash, algorithm).toUpperCase();
  } catch {
    return `unknown (${algorithm})`;
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

export interface Issuer {
  entry: KeyEntry;
  primary: KeyEntry;
  trusted: boolean;
}

export function findIssuers(keyring: Keyring, packet: SignaturePacket): Issuer[] {
  const fingerprint = packet.issuerFingerprint === null ? undefined : hex(packet.issuerFingerprint);
  const keyId = packet.issuerKeyID.toHex().toUpperCase();
  const issuers: Issuer[] = [];
  for (const entry of keyring.entries.values()) {
    const matches = fingerprint !== undefined ? entry.fingerprint === fingerprint : entry.keyId === keyId;
    const primary = keyring.entries.get(entryKey(entry.primaryFingerprint, entry.primaryFingerprint));
    if (matches && primary !== undefined) {
      issuers.push({ entry, primary, trusted: keyring.trustedFingerprints.has(entry.primaryFingerprint) });
    }
  }
  return issuers.sort((a, b) => Number(b.trusted) - Number(a.trusted));
}

/** The issuer's key ID (the low 64 bits of a v4 fingerprint), as `gpg --list-keys --keyid-format long` shows it. */
export function issuerKeyId(packet: SignaturePacket): string {
  return packet.issuerFingerprint === null
    ? packet.issuerKeyID.toHex().toUpperCase()
    : hex(packet.issuerFingerprint).slice(-16);
}

export function issuerName(packet: SignaturePacket): string {
  return packet.issuerFingerprint === null
    ? `key ID ${packet.issuerKeyID.toHex().toUpperCase()}`
    : `fingerprint ${hex(packet.issuerFingerprint)}`;
}

export function checkRevocations(issuer: Issuer, created: Date): void {
  const revoked = [
    ...issuer.primary.revocations.map((revocation) => ({ revocation, what: 'primary key' })),
    ...(issuer.entry.isPrimary
      ? []
      : issuer.entry.revocations.map((revocation) => ({ revocation, what: 'subkey' }))),
  ];
  for (const { revocation, what } of revoked) {
    if (!softRevocations.has(revocation.reason)) {
      throw new SignatureError(
        'subkey-revoked-compromised',
        `the signing ${what} of ${issuer.entry.fingerprint} was revoked on ${revocation.created.toISOString()} ` +
          `as ${revocation.reason === enums.reasonForRevocation.keyCompromised ? 'compromised' : 'revoked without a reason (treated as compromised)'}: no signature from it is trusted`,
      );
    }
  }
  for (const { revocation, what } of revoked) {
    if (created >= revocation.created) {
      throw new SignatureError(
        'subkey-revoked-before-signing',
        `the signing ${what} of ${issuer.entry.fingerprint} was retired on ${revocation.created.toISOString()}, ` +
          `before the signature was made (${created.toISOString()})`,
      );
    }
  }
}

export function checkValidAt(issuer: Issuer, created: Date): void {
  const { entry, primary } = issuer;
  const notValid = (why: string): SignatureError =>
    new SignatureError(
      'key-not-valid-at-signing',
      `key ${entry.fingerprint} was not valid when the signature was made (${created.toISOString()}): ${why}`,
    );
  if (entry.created > created || primary.created > created) {
    throw notValid(`the key was created later, on ${entry.created.toISOString()}`);
  }
  const binding = entry.isPrimary ? latestBinding(entry) : bindingAt(entry, created);
  if (binding === undefined) {
    throw notValid('no valid binding signature from its primary key was made by then');
  }
  if (!entry.algorithmCanSign || !binding.flagsAllowSigning) {
    throw new SignatureError(
      'not-signing-capable',
      `key ${entry.fingerprint} is not allowed to sign data (its ${entry.algorithmCanSign ? 'key flags' : 'algorithm'} forbid it)`,
    );
  }
  if (binding.expires !== undefined && binding.expires <= created) {
    throw notValid(`it expired on ${binding.expires.toISOString()}`);
  }
  if (!binding.backSigned) {
    throw notValid('the subkey has no valid back-signature binding it to its primary key');
  }
  const primaryBinding = latestBinding(primary);
  if (primaryBinding === undefined) {
    throw notValid(`its primary key ${primary.fingerprint} has no valid self-signature`);
  }
  if (primaryBinding.expires !== undefined && primaryBinding.expires <= created) {
    throw notValid(`its primary key expired on ${primaryBinding.expires.toISOString()}`);
  }
}

export function pickPacket(keyring: Keyring, packets: SignaturePacket[]): SignaturePacket {
  const trusted = packets.find((packet) => findIssuers(keyring, packet).some((issuer) => issuer.trusted));
  return trusted ?? (packets[0] as SignaturePacket);
}
