import * as z from 'zod';
import { MAIN_UPDATE_PAYLOAD } from './payload-record.ts';

/**
 * Flatcar's update payload key, trusted by default: the `official-v2.pub.pem` of Flatcar's
 * `coreos-au-key` package, which update_engine on every Flatcar instance checks payloads against.
 */
export const defaultUpdatePayloadKeyFiles = ['keys/flatcar-update-payload-key-official-v2.pub.pem'];

/** Where Flatcar publishes update payloads, one folder per board and version. */
export const defaultUpdateOrigin = 'https://update.release.flatcar-linux.net/{board}/{version}/';

/** The origin template with its placeholders filled in, as an http(s) URL of a folder. */
function originUrl(template: string): URL | undefined {
  try {
    const url = new URL(template.replaceAll('{board}', 'amd64-usr').replaceAll('{version}', '1.2.3'));
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

const originTemplate = z
  .string()
  .refine((value) => originUrl(value) !== undefined, 'an http(s) URL')
  .refine(
    (value) => value.includes('{board}') && value.includes('{version}'),
    'a URL naming both {board} and {version}, as in the default',
  )
  .refine((value) => originUrl(value)?.search === '', 'a URL without a query string')
  .transform((value) => (value.endsWith('/') ? value : `${value}/`));

/** `oem-<id>.gz` or an extension such as `flatcar-podman.gz`: a plain `.gz` file name of the release folder. */
const payloadName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/, 'a plain file name, without "/"')
  .refine((name) => !name.includes('..'), 'a plain file name, without ".."')
  .refine((name) => name.endsWith('.gz'), 'a payload file name ending in ".gz", such as "oem-openstack.gz"')
  .refine((name) => name !== MAIN_UPDATE_PAYLOAD, `not ${MAIN_UPDATE_PAYLOAD}, which is always mirrored`);

/**
 * The `update` section: mirroring of Flatcar update payloads. Absent, no payload is mirrored; `{}` mirrors
 * the main payload of every release from Flatcar's update origin, checked against the official key.
 */
export const updateSchema = z.strictObject({
  /** `{board}` and `{version}` are filled in per release; payloads are fetched from this folder. */
  origin: originTemplate.default(defaultUpdateOrigin),
  /** OEM and extension payloads mirrored beside `flatcar_production_update.gz`, each one job. */
  payloads: z
    .array(payloadName)
    .default([])
    .refine((names) => new Set(names).size === names.length, 'unique payload names'),
  /** PEM public keys (RSA); a payload is accepted when one of its signatures verifies with one of them. */
  payloadKeys: z.array(z.string().min(1)).min(1).default(defaultUpdatePayloadKeyFiles),
});

export type UpdateConfig = z.infer<typeof updateSchema>;

/** The URL of one payload of one release at the configured origin. */
export function updatePayloadUrl(config: UpdateConfig, board: string, version: string, name: string): string {
  const folder = config.origin.replaceAll('{board}', board).replaceAll('{version}', version);
  return new URL(name, folder).toString();
}

/** Every payload a release gets a job for: the main payload first, then the configured ones. */
export function configuredPayloads(config: UpdateConfig): string[] {
  return [MAIN_UPDATE_PAYLOAD, ...config.payloads];
}
