import type * as openpgp from 'openpgp';

export interface SubkeyName {
  fingerprint: string;
  /** 16 upper-case hex digits, as alerts and `gpg --keyid-format long` name a key. */
  keyId: string;
}

/** One key, seen before and after the upstream publishes its next signing subkey. */
export interface RotationKeys {
  /** Unencrypted, for the sim origin (`privateKeyArmored`). */
  privateKeyArmored: string;
  primaryFingerprint: string;
  oldSubkey: SubkeyName;
  newSubkey: SubkeyName;
  /** The public key as first imported: the primary and its old signing subkey only. */
  beforeArmored: string;
  /** The public key after the rotation: the primary with both subkeys, what the operator uploads. */
  afterArmored: string;
}

function nameOf(subkey: openpgp.Subkey): SubkeyName {
  return {
    fingerprint: subkey.getFingerprint().toUpperCase(),
    keyId: subkey.getKeyID().toHex().toUpperCase(),
  };
}

/**
 * The two public keyrings of a rotation, from a key with (at least) two signing subkeys: the first subkey is
 * the one in service, the second the one the upstream rotates to.
 */
export function rotationKeys(key: openpgp.PrivateKey): RotationKeys {
  const [oldSubkey, newSubkey] = key.subkeys;
  if (oldSubkey === undefined || newSubkey === undefined) {
    throw new Error('a rotation needs a key with two signing subkeys');
  }
  const before = key.toPublic();
  before.subkeys.splice(1);
  return {
    privateKeyArmored: key.armor(),
    primaryFingerprint: key.getFingerprint().toUpperCase(),
    oldSubkey: nameOf(oldSubkey),
    newSubkey: nameOf(newSubkey),
    beforeArmored: before.armor(),
    afterArmored: key.toPublic().armor(),
  };
}
