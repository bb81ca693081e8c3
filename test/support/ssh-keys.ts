import { randomBytes } from 'node:crypto';

function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A well-formed OpenSSH Ed25519 public key line (random key material: nobody holds its private key). */
export function ed25519PublicKey(comment = 'test@cldist'): string {
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(randomBytes(32))]);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}

/** A well-formed 2048-bit RSA public key line, by shape only. */
export function rsaPublicKey(comment = 'rsa@cldist'): string {
  const modulus = Buffer.concat([Buffer.from([0]), randomBytes(256)]);
  const blob = Buffer.concat([sshString('ssh-rsa'), sshString(Buffer.from([1, 0, 1])), sshString(modulus)]);
  return `ssh-rsa ${blob.toString('base64')} ${comment}`;
}
