import { isIP } from 'node:net';
import { ConfigError } from '../../shared/errors.ts';

/** Seconds an instance is told to wait when the API cannot be reached; Afterburn and Ignition retry 5xx. */
export const proxyRetryAfterSeconds = 5;

/** Where the proxy listens: an IP literal (link-local 169.254.169.254 in production) and a port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * `ADDR:PORT` with an IP literal, IPv6 in brackets (`[fe80::a9fe:a9fe]:80`). A host name is refused: the
 * proxy must bind exactly the metadata address, and a name that resolves differently tomorrow would not.
 */
export function parseListen(value: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined) {
    throw new ConfigError(
      `--listen ${JSON.stringify(value)}: expected ADDR:PORT, e.g. 169.254.169.254:80 or [::1]:8775`,
    );
  }
  const family = isIP(host);
  if (family === 0 || (family === 6 && match[1] === undefined)) {
    throw new ConfigError(
      `--listen ${JSON.stringify(value)}: ${host} is not an IP address (IPv6 goes in brackets: [::1]:8775)`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`--listen ${JSON.stringify(value)}: the port must be from 0 to 65535`);
  }
  return { host, port };
}

/**
 * The cldist API's base URL, e.g. `https://api.example.net` or `https://…/prefix`. Credentials, a query or
 * a fragment are refused: the proxy appends `/v1/metadata/…` to the path, and anything after it would be
 * silently lost or, worse, carried to every request.
 */
export function parseApiUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      `--api ${JSON.stringify(value)}: not a URL; give the cldist API's base URL, e.g. https://cldist.example.net`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`--api ${value}: expected an http:// or https:// URL, got ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(
      '--api: the URL may not carry a user or password; the proxy authenticates with its signature',
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConfigError(`--api ${value}: the base URL may not have a query or a fragment`);
  }
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/** A whole number within bounds, for the numeric flags; the message names the flag. */
export function parseBoundedInteger(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${flag} ${JSON.stringify(value)}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}
