import { type Context, Hono } from 'hono';
import type { CldistConfig } from '../config.ts';
import { describeError, TransientError } from '../errors.ts';
import type { InstanceServiceDeps } from '../instances/service.ts';
import { type InstanceRecord, type RouteFamily, reservationState } from '../instances/types.ts';
import {
  ec2IdentityDocument,
  ec2MetaData,
  openStackMetaData,
  openStackNetworkData,
  walkMetadata,
} from './documents.ts';
import type { Identity, IdentityResolver } from './identity.ts';
import { imdsTokenValid, issueImdsToken, parseTokenTtl } from './imds-token.ts';
import type { ServedConfig } from './merge.ts';
import { auditMetadata, type MetadataRequest, readUserData } from './user-data.ts';

/** Versions OpenStack Nova lists under `/openstack`; any of them (or `latest`) serves the same documents. */
export const openStackVersions = [
  '2012-08-10',
  '2013-04-04',
  '2013-10-17',
  '2015-10-15',
  '2016-06-30',
  '2016-10-06',
  '2017-02-22',
  '2018-08-27',
  '2020-10-14',
  'latest',
] as const;

/** EC2 metadata versions clients ask for (coreos-cloudinit 2009-04-04, Ignition's SDK 2019-10-01). */
export const ec2Versions = [
  '1.0',
  '2007-01-19',
  '2007-03-01',
  '2007-08-29',
  '2007-10-10',
  '2007-12-15',
  '2008-02-01',
  '2008-09-01',
  '2009-04-04',
  '2011-01-01',
  '2011-05-01',
  '2012-01-12',
  '2014-02-25',
  '2014-11-05',
  '2015-10-20',
  '2016-04-19',
  '2016-06-30',
  '2016-09-02',
  '2018-03-28',
  '2018-08-17',
  '2018-09-24',
  '2019-10-01',
  '2020-10-27',
  '2021-01-03',
  '2021-03-23',
  '2021-07-15',
  '2022-09-24',
  'latest',
] as const;

const openStackFiles = ['meta_data.json', 'network_data.json', 'user_data', 'vendor_data.json'];
const tokenHeader = 'X-aws-ec2-metadata-token';
const ttlHeader = 'X-aws-ec2-metadata-token-ttl-seconds';

export interface MetadataAppOptions {
  identity: IdentityResolver;
  deps: InstanceServiceDeps;
  config: CldistConfig;
  merge: (record: InstanceRecord, body: Uint8Array) => ServedConfig;
  /** Where the app is mounted (`/v1/metadata` for the proxied routes); stripped before dispatch. */
  prefix?: string;
  /** Seconds a 503 asks the client to wait. */
  retryAfterSeconds?: number;
  onInternalError?: (error: unknown) => void;
}

type Known = Extract<Identity, { kind: 'known' }>;

interface Dispatch {
  c: Context;
  segments: string[];
  who: Known;
  options: MetadataAppOptions;
}

function text(c: Context, status: 200 | 400 | 401 | 403 | 404 | 405, body: string): Response {
  c.header('Cache-Control', 'no-store');
  return c.text(body, status);
}

const notFound = (c: Context) => text(c, 404, 'not found\n');

/** The record of the asking instance, or undefined when it is not registered. */
async function recordOf(who: Known, options: MetadataAppOptions): Promise<InstanceRecord | undefined> {
  return who.instanceId === undefined ? undefined : options.deps.instances.get(who.instanceId);
}

/**
 * The asking instance's record once it has a config. A reserved instance still waiting for one answers 503
 * with Retry-After (Ignition and Afterburn retry), one whose deadline passed 404; both are audited.
 */
async function readyRecord(d: Dispatch, family: RouteFamily): Promise<InstanceRecord | Response> {
  const record = await recordOf(d.who, d.options);
  if (record === undefined) return notFound(d.c);
  const state = reservationState(record, d.options.deps.clock());
  if (state === 'ready') return record;
  const outcome = state === 'pending' ? 'pending' : 'reservation-lapsed';
  auditMetadata(request(d, record, family), 'metadata', outcome, d.options.deps);
  if (state === 'lapsed') return notFound(d.c);
  d.c.header('Retry-After', String(d.options.retryAfterSeconds ?? 5));
  d.c.header('Cache-Control', 'no-store');
  return d.c.text('this instance has no config yet, retry later\n', 503);
}

function request(d: Dispatch, record: InstanceRecord, family: RouteFamily): MetadataRequest {
  return {
    record,
    family: d.who.viaProxy ? 'proxy' : family,
    path: `/${d.segments.join('/')}`,
    sourceIp: d.who.sourceIp,
    userAgent: d.c.req.header('User-Agent') ?? '',
  };
}

async function userData(d: Dispatch, record: InstanceRecord, family: RouteFamily): Promise<Response> {
  const result = await readUserData(
    request(d, record, family),
    { consume: d.c.req.method !== 'HEAD', merge: d.options.merge },
    d.options.deps,
  );
  if (result.status !== 'ok') return notFound(d.c);
  return d.c.body(result.body as Uint8Array<ArrayBuffer>, 200, {
    'Content-Type': result.contentType,
    ETag: result.etag,
    'Cache-Control': 'no-store',
  });
}

function json(c: Context, value: unknown): Response {
  c.header('Cache-Control', 'no-store');
  return c.json(value);
}

async function openStack(d: Dispatch): Promise<Response> {
  const [, version, file, ...rest] = d.segments;
  if (version === undefined) return text(d.c, 200, openStackVersions.join('\n'));
  if (!(openStackVersions as readonly string[]).includes(version) || rest.length > 0) return notFound(d.c);
  const record = await readyRecord(d, 'openstack');
  if (record instanceof Response) return record;
  if (file === 'user_data') return userData(d, record, 'openstack');
  if (file === undefined) {
    auditMetadata(request(d, record, 'openstack'), 'metadata', 'served', d.options.deps);
    return text(d.c, 200, openStackFiles.join('\n'));
  }
  const documents: Record<string, (r: InstanceRecord) => unknown> = {
    'meta_data.json': openStackMetaData,
    'network_data.json': openStackNetworkData,
    'vendor_data.json': () => ({}),
  };
  const build = Object.hasOwn(documents, file) ? documents[file] : undefined;
  if (build === undefined) return notFound(d.c);
  auditMetadata(request(d, record, 'openstack'), 'metadata', 'served', d.options.deps);
  return json(d.c, build(record));
}

/** IMDSv2: a token, when sent, must be valid; without one, the request passes unless v2 is required. */
async function imdsSessionProblem(d: Dispatch): Promise<Response | undefined> {
  const token = d.c.req.header(tokenHeader);
  if (token === undefined) {
    return d.options.config.metadata.requireImdsV2
      ? text(d.c, 401, 'a session token is required\n')
      : undefined;
  }
  const keys = await d.options.identity.imdsKeys();
  const valid = keys !== undefined && imdsTokenValid(keys, token, d.who.subject, d.options.deps.clock());
  return valid ? undefined : text(d.c, 401, 'invalid or expired session token\n');
}

async function issueToken(d: Dispatch): Promise<Response> {
  if (d.c.req.header('X-Forwarded-For') !== undefined) {
    return text(d.c, 403, 'a token request through a proxy (X-Forwarded-For) is refused\n');
  }
  const ttl = parseTokenTtl(d.c.req.header(ttlHeader));
  if (ttl === undefined) return text(d.c, 400, `${ttlHeader} must be a whole number from 1 to 21600\n`);
  const keys = await d.options.identity.imdsKeys();
  if (keys === undefined) return notFound(d.c);
  const token = issueImdsToken(keys, d.who.subject, ttl, d.options.deps.clock());
  d.c.header(ttlHeader, String(ttl));
  return text(d.c, 200, token);
}

async function ec2(d: Dispatch): Promise<Response> {
  const [version, section, ...path] = d.segments;
  if (version === undefined) return text(d.c, 200, ec2Versions.join('\n'));
  if (!(ec2Versions as readonly string[]).includes(version)) return notFound(d.c);
  if (section === 'api' && path.length === 1 && path[0] === 'token') {
    if (d.c.req.method !== 'PUT') {
      d.c.header('Allow', 'PUT');
      return text(d.c, 405, 'use PUT\n');
    }
    return issueToken(d);
  }
  if (d.c.req.method !== 'GET' && d.c.req.method !== 'HEAD') return notFound(d.c);
  const refused = await imdsSessionProblem(d);
  if (refused !== undefined) return refused;
  const record = await readyRecord(d, 'ec2');
  if (record instanceof Response) return record;
  if (section === 'user-data' && path.length === 0) return userData(d, record, 'ec2');
  let answer: string | undefined;
  if (section === undefined) answer = 'dynamic\nmeta-data\nuser-data';
  if (section === 'meta-data') answer = walkMetadata(ec2MetaData(record), path);
  if (section === 'dynamic') {
    const document = JSON.stringify(ec2IdentityDocument(record), null, 2);
    answer = walkMetadata({ entries: { 'instance-identity': { entries: { document } } } }, path);
  }
  if (answer === undefined) return notFound(d.c);
  auditMetadata(request(d, record, 'ec2'), 'metadata', 'served', d.options.deps);
  return text(d.c, 200, answer);
}

/**
 * The OpenStack and EC2 metadata protocols as one Hono app, the same in every shape: the caller injects
 * how the asking instance is identified (source address on a dedicated listener, or a trusted proxy's
 * signed `X-Instance-ID`). Unknown paths and instances without such data answer 404; a store outage 503
 * with Retry-After, which Ignition retries.
 */
export function createMetadataApp(options: MetadataAppOptions): Hono {
  const app = new Hono();
  const prefix = options.prefix ?? '';
  app.onError((error, c) => {
    c.header('Cache-Control', 'no-store');
    if (error instanceof TransientError) {
      c.header('Retry-After', String(options.retryAfterSeconds ?? 5));
      return c.text('temporarily unavailable, retry later\n', 503);
    }
    (options.onInternalError ?? ((e) => process.stderr.write(`cldist metadata: ${describeError(e)}\n`)))(
      error,
    );
    return c.text('internal error\n', 500);
  });
  app.all('*', async (c) => {
    const path = c.req.path.startsWith(prefix) ? c.req.path.slice(prefix.length) : c.req.path;
    const segments = path.split('/').filter((segment) => segment !== '');
    const who = await options.identity.identify(c);
    if (who.kind === 'disabled') return notFound(c);
    if (who.kind === 'refused') return text(c, 403, 'proxy signature missing or wrong\n');
    const d: Dispatch = { c, segments, who, options };
    if (segments[0] === 'openstack') {
      return c.req.method === 'GET' || c.req.method === 'HEAD' ? openStack(d) : notFound(c);
    }
    return ec2(d);
  });
  return app;
}
