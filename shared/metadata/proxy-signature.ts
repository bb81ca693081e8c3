import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The trusted metadata proxy's word on who is asking, as OpenStack's Nova metadata proxy gives it
 * (`X-Instance-ID` plus `X-Instance-ID-Signature`, the hex HMAC-SHA256 of the id under a shared secret;
 * see the Nova metadata service documentation). The proxy also asks cldist which instance holds a source
 * address; that question is signed the same way over a prefixed message, so a signature over an address
 * can never pass for one over an instance id that happens to be spelled the same.
 */
export const proxyHeaders = {
  instanceId: 'X-Instance-ID',
  instanceIdSignature: 'X-Instance-ID-Signature',
  address: 'X-Instance-Address',
  addressSignature: 'X-Instance-Address-Signature',
} as const;

const addressDomain = 'cldist-address:';

function hmacHex(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message, 'utf8').digest('hex');
}

export function signInstanceId(secret: string, instanceId: string): string {
  return hmacHex(secret, instanceId);
}

export function signAddress(secret: string, address: string): string {
  return hmacHex(secret, `${addressDomain}${address}`);
}

/** Constant time in the signature; any secret may match, so a rotated secret overlaps with the old one. */
function matchesAny(secrets: readonly string[], message: string, signature: string | undefined): boolean {
  if (signature === undefined || !/^[0-9a-fA-F]{64}$/.test(signature)) return false;
  const given = Buffer.from(signature.toLowerCase(), 'hex');
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(hmacHex(secret, message), 'hex');
    if (timingSafeEqual(expected, given)) matched = true;
  }
  return matched;
}

export function instanceIdSignatureValid(
  secrets: readonly string[],
  instanceId: string,
  signature: string | undefined,
): boolean {
  return matchesAny(secrets, instanceId, signature);
}

export function addressSignatureValid(
  secrets: readonly string[],
  address: string,
  signature: string | undefined,
): boolean {
  return matchesAny(secrets, `${addressDomain}${address}`, signature);
}
