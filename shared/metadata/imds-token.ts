import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** EC2's bounds for `X-aws-ec2-metadata-token-ttl-seconds`. */
export const imdsTokenTtl = { min: 1, max: 21_600 } as const;

/** Keys for IMDSv2 session tokens: the first signs, any verifies (so a rotated secret overlaps). */
export interface ImdsTokenKeys {
  sign: Buffer;
  verify: readonly Buffer[];
}

/**
 * A key that lives only in this process's memory, for the metadata listener: its tokens need to survive
 * nothing but the process, and a restart only makes clients ask for a new token (EC2 clients do on 401).
 */
export function processImdsKeys(): ImdsTokenKeys {
  const key = randomBytes(32);
  return { sign: key, verify: [key] };
}

/**
 * Keys derived from the metadata proxy's shared secrets, for the proxied routes: every Lambda sandbox
 * derives the same keys, so a token one sandbox issued is honoured by the next, and nothing is stored.
 * HKDF with its own label keeps these keys apart from the secrets' use for proxy signatures.
 */
export function proxyImdsKeys(secrets: readonly string[]): ImdsTokenKeys | undefined {
  const keys = secrets.map((secret) =>
    Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), '', 'cldist imdsv2 session token', 32)),
  );
  const first = keys[0];
  return first === undefined ? undefined : { sign: first, verify: keys };
}

function mac(key: Buffer, expires: number, subject: string): Buffer {
  return createHmac('sha256', key).update(`v1.${expires}.${subject}`, 'utf8').digest();
}

/**
 * A stateless session token: `v1.{expiry seconds}.{HMAC}`. The MAC covers the expiry and the asking
 * instance (`subject`: its address or its id), so a token is worthless after its TTL and to any other
 * instance, and no server keeps session state.
 */
export function issueImdsToken(keys: ImdsTokenKeys, subject: string, ttlSeconds: number, now: Date): string {
  const expires = Math.floor(now.getTime() / 1000) + ttlSeconds;
  return `v1.${expires}.${mac(keys.sign, expires, subject).toString('base64url')}`;
}

/** Constant time in the MAC; false for anything malformed, expired or issued to another subject. */
export function imdsTokenValid(keys: ImdsTokenKeys, token: string, subject: string, now: Date): boolean {
  const match = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (match === null) return false;
  const expires = Number(match[1]);
  if (expires <= Math.floor(now.getTime() / 1000)) return false;
  const given = Buffer.from(match[2] ?? '', 'base64url');
  if (given.length !== 32) return false;
  let valid = false;
  for (const key of keys.verify) {
    if (timingSafeEqual(mac(key, expires, subject), given)) valid = true;
  }
  return valid;
}

/** The TTL header as EC2 reads it: a whole number of seconds in range, else undefined (400). */
export function parseTokenTtl(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,6}$/.test(header.trim())) return undefined;
  const ttl = Number(header.trim());
  return ttl >= imdsTokenTtl.min && ttl <= imdsTokenTtl.max ? ttl : undefined;
}
