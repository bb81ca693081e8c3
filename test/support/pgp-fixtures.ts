import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Config,
  createMessage,
  enums,
  generateKey,
  config as openpgpConfig,
  PacketList,
  type PrivateKey,
  type SecretKeyPacket,
  type SecretSubkeyPacket,
  SignaturePacket,
  type SubkeyOptions,
} from 'openpgp';

export const DAY = 86_400_000;

/** Fixed dates, so every fixture tells the same story whatever day the tests run. */
export const T0 = new Date('2020-01-01T00:00:00Z');
export const at = (days: number): Date => new Date(T0.getTime() + days * DAY);

/**
 * Keys are made with openpgp.js (Ed25519: milliseconds) in the past via `date`, so expiry and
 * revocation can be placed before or after a signature at will.
 */
export async function makeKey(options: {
  name: string;
  date?: Date;
  subkeys?: SubkeyOptions[];
  keyExpirationTime?: number;
}): Promise<PrivateKey> {
  const { privateKey } = await generateKey({
    // Legacy EdDSA (algorithm 22): the Ed25519 that gpg 2.2 understands, as fast as the new one.
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [
      { name: options.name, email: `${options.name.toLowerCase().replaceAll(' ', '-')}@example.org` },
    ],
    date: options.date ?? T0,
    subkeys: options.subkeys ?? [{ sign: true, date: options.date ?? T0 }],
    ...(options.keyExpirationTime === undefined ? {} : { keyExpirationTime: options.keyExpirationTime }),
    format: 'object',
  });
  return privateKey;
}

export function publicArmor(key: PrivateKey): string {
  return key.toPublic().armor();
}

export function fingerprint(key: { getFingerprint(): string }): string {
  return key.getFingerprint().toUpperCase();
}

type RawSign = (
  key: SecretKeyPacket | SecretSubkeyPacket,
  data: object,
  date: Date,
  detached: boolean,
  config: Config,
) => Promise<void>;

/**
 * Signs with a key packet directly, skipping openpgp.js's own checks (key expired, not yet valid,
 * not allowed to sign), so the verifier's refusals can be tested; the signature is otherwise a
 * plain binary detached signature, as upstream's `.sig` files are.
 */
export async function signDetached(
  signingKey: SecretKeyPacket | SecretSubkeyPacket,
  data: Uint8Array,
  options: { date: Date; hash?: enums.hash; type?: enums.signature },
): Promise<Uint8Array> {
  const packet = new SignaturePacket();
  packet.signatureType = options.type ?? enums.signature.binary;
  packet.publicKeyAlgorithm = signingKey.algorithm;
  packet.hashAlgorithm = options.hash ?? enums.hash.sha512;
  const message = await createMessage({ binary: data });
  const literal = message.packets.findPacket(enums.packet.literalData);
  if (literal === undefined) {
    throw new Error('openpgp.js made a message without a literal data packet');
  }
  const sign = packet.sign.bind(packet) as unknown as RawSign;
  // No salt notation: openpgp.js has no salt length for SHA-1, which the weak-hash tests need.
  await sign(signingKey, literal, options.date, true, {
    ...openpgpConfig,
    nonDeterministicSignaturesViaNotation: false,
  });
  const list = new PacketList<SignaturePacket>();
  list.push(packet);
  return list.write();
}

/** Replaces subkey `index` by a copy revoked with `flag` on `date`, as upstream did in 2018. */
export async function revokeSubkey(
  key: PrivateKey,
  index: number,
  flag: enums.reasonForRevocation,
  date: Date,
): Promise<void> {
  const subkey = key.subkeys[index];
  if (subkey === undefined) {
    throw new Error(`the key has no subkey ${index}`);
  }
  key.subkeys[index] = await subkey.revoke(key.keyPacket as SecretKeyPacket, { flag }, date);
}

/**
 * Replaces subkey `index`'s bindings by one made on `date` that allows signing but lacks the
 * subkey's own back-signature, which is what a third party could forge for a key it does not hold.
 */
export async function bindWithoutBackSignature(key: PrivateKey, index: number, date: Date): Promise<void> {
  const subkey = key.subkeys[index];
  if (subkey === undefined) {
    throw new Error(`the key has no subkey ${index}`);
  }
  const binding = new SignaturePacket();
  binding.signatureType = enums.signature.subkeyBinding;
  binding.publicKeyAlgorithm = key.keyPacket.algorithm;
  binding.hashAlgorithm = enums.hash.sha512;
  binding.keyFlags = new Uint8Array([enums.keyFlags.signData]);
  const sign = binding.sign.bind(binding) as unknown as RawSign;
  await sign(
    key.keyPacket as SecretKeyPacket,
    { key: key.keyPacket, bind: subkey.keyPacket },
    date,
    false,
    openpgpConfig,
  );
  subkey.bindingSignatures = [binding];
}

export function subkeyPacket(key: PrivateKey, index: number): SecretSubkeyPacket {
  const subkey = key.subkeys[index];
  if (subkey === undefined) {
    throw new Error(`the key has no subkey ${index}`);
  }
  return subkey.keyPacket as SecretSubkeyPacket;
}

export async function* chunksOf(data: Uint8Array, size = 64 * 1024): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < data.byteLength; offset += size) {
    yield data.slice(offset, offset + size);
  }
}

export function randomBytes(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = state >>> 16;
  }
  return bytes;
}

export interface GpgRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real gpg, in a throw-away home with only public keys, so it never needs an agent. */
export interface Gpg {
  home: string;
  run(args: string[]): Promise<GpgRun>;
  importKey(armored: string): Promise<void>;
  /** gpg --verify, with the status lines (GOODSIG, BADSIG, ...) as the verdict. */
  verify(signature: Uint8Array, data: Uint8Array): Promise<GpgRun & { status: string[] }>;
  close(): Promise<void>;
}

export async function startGpg(): Promise<Gpg> {
  const home = await mkdtemp(join(tmpdir(), 'cldist-gpg-'));
  let counter = 0;
  const run = (args: string[]): Promise<GpgRun> =>
    new Promise((resolve) => {
      execFile(
        'gpg',
        ['--homedir', home, '--batch', '--no-autostart', '--no-tty', ...args],
        { encoding: 'utf8' },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
    });
  return {
    home,
    run,
    async importKey(armored) {
      counter += 1;
      const path = join(home, `key-${counter}.asc`);
      await writeFile(path, armored);
      const result = await run(['--import', path]);
      if (result.code !== 0) {
        throw new Error(`gpg --import failed: ${result.stderr}`);
      }
    },
    async verify(signature, data) {
      counter += 1;
      const sigPath = join(home, `data-${counter}.sig`);
      const dataPath = join(home, `data-${counter}`);
      await writeFile(sigPath, signature);
      await writeFile(dataPath, data);
      const result = await run(['--status-fd', '1', '--verify', sigPath, dataPath]);
      const status = result.stdout
        .split('\n')
        .filter((line) => line.startsWith('[GNUPG:] '))
        .map((line) => line.slice('[GNUPG:] '.length));
      return { ...result, status };
    },
    async close() {
      await rm(home, { recursive: true, force: true });
    },
  };
}
