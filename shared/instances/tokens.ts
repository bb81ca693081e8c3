import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 random bits: unguessable even with unlimited online attempts. */
export function newInstanceToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Only the hash is stored, so a leaked table or backup does not leak working tokens. */
export function hashInstanceToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Compares hashes, not tokens: both sides have the same length whatever the caller sent, so
 * `timingSafeEqual` applies and the time taken says nothing about how much of the token was right.
 */
export function instanceTokenMatches(token: string, storedHash: string): boolean {
  const given = createHash('sha256').update(token, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === given.length && timingSafeEqual(given, stored);
}
