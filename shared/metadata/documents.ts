import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { InstanceRecord } from '../instances/types.ts';
import { emptyParams, type InstanceParams } from './params.ts';

/**
 * The documents the OpenStack and EC2 metadata protocols serve, built from an instance record. Field
 * names and layouts follow the OpenStack Nova metadata service documentation and the EC2 instance
 * metadata categories documentation; values cldist does not know are left out rather than invented.
 */

/** A metadata directory: its entries, and the listing text when it is not the plain list of names. */
export interface MetadataDirectory {
  entries: Record<string, MetadataNode>;
  listing?: string;
}

export type MetadataNode = string | MetadataDirectory;

function paramsOf(record: InstanceRecord): InstanceParams {
  return record.params ?? emptyParams;
}

function hostnameOf(record: InstanceRecord): string {
  return paramsOf(record).hostname ?? record.id;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** OpenStack's `uuid` is a UUID; an id that is not one gets a stable name-based UUID (RFC 9562 v8). */
export function instanceUuid(id: string): string {
  if (uuidPattern.test(id)) return id.toLowerCase();
  const hex = createHash('sha256').update(`cldist-instance:${id}`, 'utf8').digest('hex');
  const variant = ((Number.parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function keyName(index: number): string {
  return `key-${index}`;
}

/** An AWS-style zone (`eu-west-1a`) names its region by dropping the letter; other zones name none. */
function regionOf(zone: string | undefined): string | undefined {
  const match = zone === undefined ? null : /^([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]$/.exec(zone);
  return match?.[1];
}

function defined<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function openStackMetaData(record: InstanceRecord): Record<string, unknown> {
  const params = paramsOf(record);
  return {
    uuid: instanceUuid(record.id),
    name: hostnameOf(record),
    hostname: hostnameOf(record),
    public_keys: Object.fromEntries(params.sshKeys.map((key, i) => [keyName(i), key])),
    keys: params.sshKeys.map((key, i) => ({ name: keyName(i), type: 'ssh', data: key })),
    availability_zone: params.zone ?? null,
    launch_index: 0,
    meta: params.attributes,
    ...(params.instanceType === undefined ? {} : { instance_type: params.instanceType }),
  };
}

export function openStackNetworkData(record: InstanceRecord): Record<string, unknown> {
  const params = paramsOf(record);
  const ips = [...params.ips];
  return {
    links: ips.length === 0 ? [] : [{ id: 'interface0', type: 'phy' }],
    networks: ips.map((ip, i) => ({
      id: `network${i}`,
      link: 'interface0',
      type: isIPv6(ip) ? 'ipv6' : 'ipv4',
      ip_address: ip,
    })),
    services: [],
    ...(params.publicIp === undefined ? {} : { public_ip: params.publicIp }),
  };
}

function publicKeysDirectory(keys: readonly string[]): MetadataDirectory {
  return {
    listing: keys.map((_, i) => `${i}=${keyName(i)}`).join('\n'),
    entries: Object.fromEntries(
      keys.map((key, i) => [String(i), { entries: { 'openssh-key': key } } satisfies MetadataDirectory]),
    ),
  };
}

/** The EC2 `meta-data/` tree of one instance. */
export function ec2MetaData(record: InstanceRecord): MetadataDirectory {
  const params = paramsOf(record);
  const localIpv4 = params.ips.find((ip) => isIPv4(ip));
  const localIpv6 = params.ips.find((ip) => isIPv6(ip));
  const region = regionOf(params.zone);
  const leaves = defined({
    'instance-id': record.id,
    hostname: hostnameOf(record),
    'local-hostname': hostnameOf(record),
    'instance-type': params.instanceType,
    'local-ipv4': localIpv4,
    ipv6: localIpv6,
    'public-ipv4': params.publicIp !== undefined && isIPv4(params.publicIp) ? params.publicIp : undefined,
    'ami-launch-index': '0',
  }) as Record<string, string>;
  const placement = defined({ 'availability-zone': params.zone, region }) as Record<string, string>;
  const entries: Record<string, MetadataNode> = { ...leaves };
  if (params.sshKeys.length > 0) entries['public-keys'] = publicKeysDirectory(params.sshKeys);
  if (Object.keys(placement).length > 0) entries.placement = { entries: placement };
  if (Object.keys(params.attributes).length > 0) {
    entries.tags = { entries: { instance: { entries: { ...params.attributes } } } };
  }
  return { entries };
}

/** `dynamic/instance-identity/document`, which the AWS SDK reads for the region. */
export function ec2IdentityDocument(record: InstanceRecord): Record<string, unknown> {
  const params = paramsOf(record);
  return defined({
    instanceId: record.id,
    instanceType: params.instanceType,
    availabilityZone: params.zone,
    region: regionOf(params.zone),
    privateIp: params.ips.find((ip) => isIPv4(ip)),
    pendingTime: record.createdAt,
    version: '2017-09-30',
  });
}

/**
 * The node at `segments` under `root`: a leaf's text, or a directory's listing (sub-directories end in
 * "/", as EC2 lists them). Undefined where there is nothing.
 */
export function walkMetadata(root: MetadataDirectory, segments: readonly string[]): string | undefined {
  let node: MetadataNode = root;
  for (const segment of segments) {
    if (typeof node === 'string' || !Object.hasOwn(node.entries, segment)) return undefined;
    node = node.entries[segment] as MetadataNode;
  }
  if (typeof node === 'string') return node;
  return (
    node.listing ??
    Object.entries(node.entries)
      .map(([name, child]) => (typeof child === 'string' ? name : `${name}/`))
      .join('\n')
  );
}
