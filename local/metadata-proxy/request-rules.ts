/**
 * What of an instance's request may reach the API. The instance is untrusted: it writes every header
 * and the path, so the proxy passes an allowlist and decides identity itself.
 */

/** IMDSv2 session headers, passed through so the API can issue and check tokens (names as EC2 spells them). */
export const imdsTokenHeader = 'X-aws-ec2-metadata-token';
export const imdsTokenTtlHeader = 'X-aws-ec2-metadata-token-ttl-seconds';

/** Request headers forwarded to the API, lower-cased as Node gives them, with the name the API receives. */
const forwardedRequestHeaders: Record<string, string> = {
  accept: 'Accept',
  'user-agent': 'User-Agent',
  'if-none-match': 'If-None-Match',
  [imdsTokenHeader.toLowerCase()]: imdsTokenHeader,
  [imdsTokenTtlHeader.toLowerCase()]: imdsTokenTtlHeader,
};

/** Response headers passed back to the instance; everything else (cookies, server details) is dropped. */
export const forwardedResponseHeaders = [
  'content-type',
  'content-length',
  'retry-after',
  'etag',
  'cache-control',
  'last-modified',
  imdsTokenTtlHeader.toLowerCase(),
] as const;

/** A metadata path is short; Ignition, Afterburn and coreos-cloudinit ask for well under 100 characters. */
export const maxPathLength = 1024;
/** One header value from the allowlist; an IMDSv2 token is 56 characters on EC2. */
export const maxHeaderValueLength = 1024;

const pathCharacters = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

export type PathCheck = { ok: true; path: string } | { ok: false; reason: string };

/**
 * The instance's path, checked so that appending it to `/v1/metadata` can never climb out of that prefix:
 * no `.`/`..` segments (plain or percent-encoded), no encoded slash or backslash, no control characters.
 * The query string is dropped; no metadata client sends one and the routes take none.
 */
export function checkPath(rawUrl: string | undefined): PathCheck {
  if (rawUrl === undefined || rawUrl === '') return { ok: false, reason: 'empty request target' };
  const path = rawUrl.split('?', 1)[0] ?? '';
  if (path.length > maxPathLength)
    return { ok: false, reason: `path longer than ${maxPathLength} characters` };
  if (!pathCharacters.test(path)) return { ok: false, reason: 'path has characters outside RFC 3986' };
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return { ok: false, reason: 'path has a malformed percent-escape' };
  }
  if (/%2f|%5c/i.test(path) || decoded.includes('\\')) {
    return { ok: false, reason: 'path has an encoded slash or a backslash' };
  }
  if (decoded.split('/').some((segment) => segment === '.' || segment === '..')) {
    return { ok: false, reason: 'path has a "." or ".." segment' };
  }
  return { ok: true, path };
}

export type HeaderCheck = { ok: true; headers: Record<string, string> } | { ok: false; reason: string };

/**
 * The allowlisted headers with their values. Identity headers (X-Instance-ID*, X-Instance-Address*) and
 * forwarding headers (X-Forwarded-For, Forwarded, X-Real-IP) are never in the allowlist, so whatever the
 * instance writes there is dropped; the proxy sets identity from the TCP source address alone.
 */
export function forwardableHeaders(headers: Record<string, string | string[] | undefined>): HeaderCheck {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const forwardedName = forwardedRequestHeaders[name];
    if (forwardedName === undefined || value === undefined) continue;
    if (Array.isArray(value)) return { ok: false, reason: `${forwardedName} given more than once` };
    if (value.length > maxHeaderValueLength) {
      return { ok: false, reason: `${forwardedName} longer than ${maxHeaderValueLength} characters` };
    }
    out[forwardedName] = value;
  }
  return { ok: true, headers: out };
}

/**
 * EC2 refuses an IMDSv2 token request that carries X-Forwarded-For: a request relayed through a
 * misconfigured proxy or a server-side request forgery on the instance would carry it, and a token handed
 * out there would leak the session. The proxy strips that header, so it must apply the rule itself.
 */
export function isRefusedTokenRequest(
  method: string | undefined,
  path: string,
  headers: Record<string, string | string[] | undefined>,
): boolean {
  return method === 'PUT' && /\/api\/token$/.test(path) && headers['x-forwarded-for'] !== undefined;
}

/**
 * `::ffff:10.0.0.7` (an IPv4 peer on a dual-stack socket) is the instance at 10.0.0.7, and
 * `fe80::7%br0` is `fe80::7`: the zone names an interface of the proxy's host, which means nothing to the
 * API, and instances are registered by address alone.
 */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped?.[1] ?? address.replace(/%.*$/, '');
}
