import type { Context } from 'hono';
import type { InstanceRepository } from '../instances/types.ts';
import { instanceIdPattern } from '../instances/types.ts';
import { type ImdsTokenKeys, processImdsKeys, proxyImdsKeys } from './imds-token.ts';
import { canonicalAddress } from './params.ts';
import { instanceIdSignatureValid, proxyHeaders } from './proxy-signature.ts';

/** The shared secrets of the metadata proxy, newest first; empty when none is configured. */
export type ProxySecretsProvider = () => Promise<readonly string[]>;

/** Who is asking, as far as the service can tell without trusting anything the instance wrote. */
export type Identity =
  | {
      kind: 'known';
      /** The instance, if one is registered for what identified the caller. */
      instanceId: string | undefined;
      /** What IMDSv2 session tokens are bound to. */
      subject: string;
      /** The peer address, for the audit. */
      sourceIp: string;
      /** `proxy` when a trusted proxy vouched; otherwise the protocol's own family is audited. */
      viaProxy: boolean;
    }
  /** A proxied request whose signature is missing or wrong. */
  | { kind: 'refused' }
  /** The proxied routes are off (no secret configured). */
  | { kind: 'disabled' };

/** How a metadata app identifies the caller, and which keys its IMDSv2 tokens use. */
export interface IdentityResolver {
  identify(c: Context): Promise<Identity>;
  imdsKeys(): Promise<ImdsTokenKeys | undefined>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * The peer address as the platform saw it: API Gateway's `requestContext.http.sourceIp`, or the socket
 * under @hono/node-server. Never a header: any client can write those.
 */
export function peerAddress(c: Context): string {
  const env: unknown = c.env;
  if (!isRecord(env)) return 'unknown';
  const requestContext = env.requestContext;
  if (isRecord(requestContext) && isRecord(requestContext.http)) {
    const ip = requestContext.http.sourceIp;
    if (typeof ip === 'string') return ip;
  }
  const incoming = env.incoming;
  if (isRecord(incoming) && isRecord(incoming.socket)) {
    const ip = incoming.socket.remoteAddress;
    if (typeof ip === 'string') return ip;
  }
  return 'unknown';
}

/**
 * Identity by source address, for a listener instances reach directly (the link-local 169.254.169.254
 * of one machine). Headers are not read at all, so `X-Forwarded-For` or `X-Instance-ID` change nothing.
 */
export function sourceAddressIdentity(
  instances: Pick<InstanceRepository, 'instanceAtAddress'>,
): IdentityResolver {
  const keys = processImdsKeys();
  return {
    async identify(c) {
      const peer = peerAddress(c);
      const address = canonicalAddress(peer);
      if (address === undefined)
        return { kind: 'known', instanceId: undefined, subject: '', sourceIp: peer, viaProxy: false };
      const instanceId = await instances.instanceAtAddress(address);
      return { kind: 'known', instanceId, subject: `address:${address}`, sourceIp: address, viaProxy: false };
    },
    imdsKeys: () => Promise.resolve(keys),
  };
}

/**
 * Identity from a trusted metadata proxy: `X-Instance-ID` with its HMAC in `X-Instance-ID-Signature`,
 * checked in constant time against every current secret. Without a secret the routes are off.
 */
export function proxiedIdentity(secrets: ProxySecretsProvider | undefined): IdentityResolver {
  return {
    async identify(c) {
      const current = secrets === undefined ? [] : await secrets();
      if (current.length === 0) return { kind: 'disabled' };
      const id = c.req.header(proxyHeaders.instanceId);
      const signature = c.req.header(proxyHeaders.instanceIdSignature);
      if (
        id === undefined ||
        !instanceIdPattern.test(id) ||
        !instanceIdSignatureValid(current, id, signature)
      ) {
        return { kind: 'refused' };
      }
      return {
        kind: 'known',
        instanceId: id,
        subject: `instance:${id}`,
        sourceIp: peerAddress(c),
        viaProxy: true,
      };
    },
    async imdsKeys() {
      return proxyImdsKeys(secrets === undefined ? [] : await secrets());
    },
  };
}
