import { readFile } from 'node:fs/promises';
import {
  type AnyKeyPacket,
  config as defaultOpenpgpConfig,
  enums,
  type Key,
  type PublicKey,
  readKeys,
  type SignaturePacket,
  type Subkey,
} from 'openpgp';
import { type CldistConfig, resolveProjectPath } from '../config.ts';
import { ConfigError } from '../errors.ts';
import type { KeyringStatus, SigningKeyStatus } from './types.ts';

/** A revocation whose signature verified against the primary key; forged ones are ignored. */
export interface RevocationFact {
  created: Date;
  /** `null`: the revocation carries no reason subpacket. */
  reason: enums.reasonForRevocation | null;
}

/** A binding (subkey) or self-certification (primary) that verified, read without any time check. */
export interface BindingFact {
  created: Date;
  /** undefined: the key does not expire under this binding. */
  expires: Date | undefined;
  /** The key flags allow signing data (no flags at all counts as allowed, as in RFC 4880). */
  flagsAllowSigning: boolean;
  /** For signing subkeys: the subkey's own back-signature (0x19) verified, so it agreed to be bound. */
  backSigned: boolean;
}

/**
 * What the verifier needs to know about one (sub)key, worked out once at load so that checks at
 * verification time, and the synchronous status report, are plain comparisons of dates.
 */
export interface KeyEntry {
  fingerprint: string;
  /** 16 upper-case hex digits. */
  keyId: string;
  primaryFingerprint: string;
  isPrimary: boolean;
  created: Date;
  packet: AnyKeyPacket;
  /** The public-key algorithm can make signatures at all (an ECDH or Elgamal key never can). */
  algorithmCanSign: boolean;
  bindings: BindingFact[];
  revocations: RevocationFact[];
}

/**
 * A parsed, pre-checked keyring. Trust is a property of the primary fingerprint only, so a key
 * present here but not trusted is reported as such instead of as unknown.
 */
export interface Keyring {
  readonly keys: readonly PublicKey[];
  readonly trustedFingerprints: ReadonlySet<string>;
  /**
   * Every primary key and subkey, keyed by `entryKey(primary, key)`: a subkey is only ever judged by
   * bindings from the primary it is filed under, even if another key in the ring claims it too.
   */
  readonly entries: ReadonlyMap<string, KeyEntry>;
}

const signingAlgorithms = new Set<enums.publicKey>([
  enums.publicKey.rsaEncryptSign,
  enums.publicKey.rsaSign,
  enums.publicKey.dsa,
  enums.publicKey.ecdsa,
  enums.publicKey.eddsaLegacy,
  enums.publicKey.ed25519,
  enums.publicKey.ed448,
]);

const selfCertificationTypes = new Set<enums.signature | null>([
  enums.signature.certGeneric,
  enums.signature.certPersona,
  enums.signature.certCasual,
  enums.signature.certPositive,
]);

async function verifiesWithoutTimeCheck(
  signature: SignaturePacket,
  key: AnyKeyPacket,
  type: enums.signature,
  data: object,
): Promise<boolean> {
  try {
    // A null date skips openpgp's time checks: expiry and validity in time are judged per signature later.
    await signature.verify(key, type, data, null as unknown as Date, false, defaultOpenpgpConfig);
    return true;
  } catch {
    return false;
  }
}

function expiryOf(keyPacket: AnyKeyPacket, signature: SignaturePacket): Date | undefined {
  if (signature.keyNeverExpires === false && signature.keyExpirationTime !== null) {
    return new Date(keyPacket.created.getTime() + signature.keyExpirationTime * 1000);
  }
  return undefined;
}

function allowsSigning(signature: SignaturePacket): boolean {
  const flags = signature.keyFlags;
  return flags === null || flags.length === 0 || ((flags[0] ?? 0) & enums.keyFlags.signData) !== 0;
}

async function revocationFacts(
  revocations: SignaturePacket[],
  primary: AnyKeyPacket,
  type: enums.signature,
  data: object,
): Promise<RevocationFact[]> {
  const facts: RevocationFact[] = [];
  for (const revocation of revocations) {
    if (revocation.created !== null && (await verifiesWithoutTimeCheck(revocation, primary, type, data))) {
      facts.push({ created: revocation.created, reason: revocation.reasonForRevocationFlag ?? null });
    }
  }
  return facts;
}

async function primaryEntry(key: PublicKey): Promise<KeyEntry> {
  const primary = key.keyPacket;
  const bindings: BindingFact[] = [];
  for (const user of key.users) {
    const data = user.userID
      ? { userID: user.userID, key: primary }
      : { userAttribute: user.userAttribute, key: primary };
    for (const certification of user.selfCertifications) {
      if (
        certification.created !== null &&
        selfCertificationTypes.has(certification.signatureType) &&
        (await verifiesWithoutTimeCheck(certification, primary, certification.signatureType ?? 0, data))
      ) {
        bindings.push({
          created: certification.created,
          expires: expiryOf(primary, certification),
          flagsAllowSigning: allowsSigning(certification),
          backSigned: true,
        });
      }
    }
  }
  const fingerprint = key.getFingerprint().toUpperCase();
  return {
    fingerprint,
    keyId: key.getKeyID().toHex().toUpperCase(),
    primaryFingerprint: fingerprint,
    isPrimary: true,
    created: primary.created,
    packet: primary,
    algorithmCanSign: signingAlgorithms.has(primary.algorithm),
    bindings,
    revocations: await revocationFacts(key.revocationSignatures, primary, enums.signature.keyRevocation, {
      key: primary,
    }),
  };
}

async function subkeyEntry(key: PublicKey, subkey: Subkey): Promise<KeyEntry> {
  const primary = key.keyPacket;
  const data = { key: primary, bind: subkey.keyPacket };
  const bindings: BindingFact[] = [];
  for (const binding of subkey.bindingSignatures) {
    if (
      binding.created !== null &&
      (await verifiesWithoutTimeCheck(binding, primary, enums.signature.subkeyBinding, data))
    ) {
      const embedded = binding.embeddedSignature;
      bindings.push({
        created: binding.created,
        expires: expiryOf(subkey.keyPacket, binding),
        flagsAllowSigning: allowsSigning(binding),
        backSigned:
          embedded !== null &&
          (await verifiesWithoutTimeCheck(embedded, subkey.keyPacket, enums.signature.keyBinding, data)),
      });
    }
  }
  return {
    fingerprint: subkey.getFingerprint().toUpperCase(),
    keyId: subkey.getKeyID().toHex().toUpperCase(),
    primaryFingerprint: key.getFingerprint().toUpperCase(),
    isPrimary: false,
    created: subkey.getCreationTime(),
    packet: subkey.keyPacket,
    algorithmCanSign: signingAlgorithms.has(subkey.keyPacket.algorithm),
    bindings,
    revocations: await revocationFacts(
      subkey.revocationSignatures,
      primary,
      enums.signature.subkeyRevocation,
      data,
    ),
  };
}

export function entryKey(primaryFingerprint: string, fingerprint: string): string {
  return `${primaryFingerprint}/${fingerprint}`;
}

function mergeEntry(entries: Map<string, KeyEntry>, entry: KeyEntry): void {
  const key = entryKey(entry.primaryFingerprint, entry.fingerprint);
  const existing = entries.get(key);
  if (existing === undefined) {
    entries.set(key, entry);
    return;
  }
  existing.bindings.push(...entry.bindings);
  existing.revocations.push(...entry.revocations);
}

const armorBlock = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

/** One armor block can hold several keys, and files are often several blocks concatenated. */
function armorBlocks(text: string): string[] {
  const blocks = text.match(armorBlock);
  return blocks === null ? [text] : blocks;
}

function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replaceAll(' ', '').toUpperCase();
}

/** The public keys of each armored text, in order; an unreadable text is a `ConfigError` naming its label. */
async function readPublicKeys(armoredKeys: string[], labels?: string[]): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const [index, armored] of armoredKeys.entries()) {
    const label = labels?.[index] ?? `keyring input #${index + 1}`;
    const parsed: Key[] = [];
    try {
      for (const block of armorBlocks(armored)) {
        parsed.push(...(await readKeys({ armoredKeys: block })));
      }
    } catch (cause) {
      throw new ConfigError(
        `${label} is not an ASCII-armored OpenPGP public key: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    keys.push(...parsed.map((key) => key.toPublic()));
  }
  return keys;
}

/**
 * Keys are read once so a rotated key (the same primary, one more subkey) can arrive as a second
 * text and simply add to what the bundled file says. `labels` name the inputs in errors.
 */
export async function loadKeyring(
  armoredKeys: string[],
  trustedFingerprints: string[],
  labels?: string[],
): Promise<Keyring> {
  const keys = await readPublicKeys(armoredKeys, labels);
  const entries = new Map<string, KeyEntry>();
  for (const publicKey of keys) {
    mergeEntry(entries, await primaryEntry(publicKey));
    for (const subkey of publicKey.subkeys) {
      mergeEntry(entries, await subkeyEntry(publicKey, subkey));
    }
  }
  const trusted = new Set(trustedFingerprints.map(normaliseFingerprint));
  for (const fingerprint of trusted) {
    if (!entries.has(entryKey(fingerprint, fingerprint))) {
      throw new ConfigError(
        `trusted fingerprint ${fingerprint} is not the primary key of any key in the keyring; add its public key file`,
      );
    }
  }
  return { keys, trustedFingerprints: trusted, entries };
}

/** The config names files relative to the project root; the extra texts come from a rotation object. */
export async function loadKeyringFromConfig(
  keyring: CldistConfig['keyring'],
  extraArmored: string[] = [],
): Promise<Keyring> {
  const texts: string[] = [];
  const labels: string[] = [];
  for (const file of keyring.files) {
    const path = resolveProjectPath(file);
    try {
      texts.push(await readFile(path, 'utf8'));
    } catch (cause) {
      throw new ConfigError(`keyring.files: cannot read ${path}: ${(cause as Error).message}`, { cause });
    }
    labels.push(`keyring file ${path}`);
  }
  for (const [index, text] of extraArmored.entries()) {
    texts.push(text);
    labels.push(`extra keyring text #${index + 1}`);
  }
  return loadKeyring(texts, keyring.trustedFingerprints, labels);
}

/** The binding in force at `date`: the newest one made at or before it. */
export function bindingAt(entry: KeyEntry, date: Date): BindingFact | undefined {
  let found: BindingFact | undefined;
  for (const binding of entry.bindings) {
    if (binding.created <= date && (found === undefined || binding.created >= found.created)) {
      found = binding;
    }
  }
  return found;
}

/** The newest binding overall: a re-issued self-signature speaks for the primary key's whole life. */
export function latestBinding(entry: KeyEntry): BindingFact | undefined {
  let found: BindingFact | undefined;
  for (const binding of entry.bindings) {
    if (found === undefined || binding.created >= found.created) {
      found = binding;
    }
  }
  return found;
}

function usableAt(entry: KeyEntry, primary: KeyEntry, now: Date): SigningKeyStatus | undefined {
  const binding = bindingAt(entry, now);
  const primaryBinding = latestBinding(primary);
  if (
    binding === undefined ||
    primaryBinding === undefined ||
    !entry.algorithmCanSign ||
    !binding.flagsAllowSigning ||
    !binding.backSigned ||
    entry.created > now ||
    (binding.expires !== undefined && binding.expires <= now) ||
    (primaryBinding.expires !== undefined && primaryBinding.expires <= now) ||
    entry.revocations.some((r) => r.created <= now) ||
    primary.revocations.some((r) => r.created <= now)
  ) {
    return undefined;
  }
  const expires = [binding.expires, primaryBinding.expires]
    .filter((d): d is Date => d !== undefined)
    .sort((a, b) => a.getTime() - b.getTime())[0];
  return {
    primaryKeyFingerprint: primary.fingerprint,
    signingKeyFingerprint: entry.fingerprint,
    ...(expires === undefined ? {} : { expires }),
  };
}

/**
 * Upstream rotates its signing subkey about yearly and publishes the new public key only shortly
 * before; the mirror must warn in time for the operator to import it.
 */
export function keyringStatus(keyring: Keyring, now: Date, warningDays: number): KeyringStatus {
  const current: SigningKeyStatus[] = [];
  for (const fingerprint of keyring.trustedFingerprints) {
    const primary = keyring.entries.get(entryKey(fingerprint, fingerprint));
    if (primary === undefined) {
      continue;
    }
    let newest: { entry: KeyEntry; status: SigningKeyStatus } | undefined;
    for (const entry of keyring.entries.values()) {
      if (entry.isPrimary || entry.primaryFingerprint !== fingerprint) {
        continue;
      }
      const status = usableAt(entry, primary, now);
      if (status !== undefined && (newest === undefined || entry.created > newest.entry.created)) {
        newest = { entry, status };
      }
    }
    if (newest !== undefined) {
      current.push(newest.status);
    }
  }
  const horizon = now.getTime() + warningDays * 86_400_000;
  const expiringSoon = current.filter((s) => s.expires !== undefined && s.expires.getTime() <= horizon);
  return { current, expiringSoon };
}

/**
 * The primary fingerprints in armored key files: a key file the operator names on the command line is
 * their statement of trust (as with sqv's --keyring), unless they narrow it with explicit fingerprints.
 */
export async function primaryFingerprintsOf(armoredKeys: string[], labels?: string[]): Promise<string[]> {
  // Only read: the keyring built from the config checks every binding signature once, later.
  const keys = await readPublicKeys(armoredKeys, labels);
  if (keys.length === 0) {
    throw new ConfigError(`${(labels ?? ['the keyring']).join(', ')}: no public key found`);
  }
  return [...new Set(keys.map((key) => key.getFingerprint().toUpperCase()))];
}
