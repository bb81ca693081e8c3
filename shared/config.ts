import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { fleetConfigSchema } from './config-fleet.ts';
import { instancesSchema } from './config-instances.ts';
import { formatIssues } from './config-issues.ts';
import {
  coreosFingerprint,
  fingerprint,
  flatcarFingerprint,
  legacyKeys,
  legacyShape,
  legacySource,
  plainName,
  resolveSource,
  type SourceConfig,
  sourceSchema,
} from './config-sources.ts';
import { ConfigError } from './errors.ts';
import { validateIgnition } from './instances/ignition.ts';

/** The project root, so the bundled keyring is found whatever the working directory. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The real image signing keys, trusted by default: Flatcar's as published at
 * https://www.flatcar.org/security/image-signing-key/, and the CoreOS key that signed the CoreOS archive.
 */
export const defaultKeyringFiles = [
  'keys/Flatcar_Image_Signing_Key.asc',
  'keys/CoreOS_Image_Signing_Key.asc',
];
export const defaultTrustedFingerprints = [flatcarFingerprint, coreosFingerprint];

const storeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('local'), path: z.string().min(1).default('data/mirror') }),
  z.strictObject({
    kind: z.literal('s3'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9._-]+\/)*$/, 'empty, or path segments each ending in "/"')
      .refine((prefix) => !prefix.split('/').some((s) => s === '.' || s === '..'), 'no "." or ".." segments')
      .default(''),
  }),
]);

const awsName = z.string().regex(/^[A-Za-z0-9_.-]{3,80}$/, '3 to 80 letters, digits, "_", "." or "-"');

const MiB = 1024 * 1024;

/**
 * The provider's Ignition config, merged into every Ignition config served. Checked like a user's config
 * (spec 3.x only: the served wrapper merges it with Ignition's own merge, which 2.x clients lack).
 */
const baseIgnition = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const result = validateIgnition(value, { allowLegacy: false });
  for (const issue of result.errors) {
    const where = issue.path.replace(/^\$\.?/, '');
    ctx.addIssue({ code: 'custom', message: where === '' ? issue.message : `${where}: ${issue.message}` });
  }
});

// Update payloads (the `update` section). Helpers that use it live in shared/update/origin.ts.

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
  .refine(
    (name) => name !== 'flatcar_production_update.gz',
    'not flatcar_production_update.gz, which is always mirrored',
  );

/**
 * The `update` section: mirroring of Flatcar update payloads. Absent, no payload is mirrored; `{}` mirrors
 * the main payload of every release from Flatcar's update origin, checked against the official key.
 */
const updateSchema = z.strictObject({
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

export const configSchema = z
  .strictObject({
    sources: z.array(sourceSchema).min(1).optional(),
    ...legacyShape,
    keyring: z
      .strictObject({
        /** ASCII-armored public keys; relative paths are taken from the project root. */
        files: z.array(z.string().min(1)).min(1).default(defaultKeyringFiles),
        /** Primary key fingerprints that anchor trust. A key in the files but not here is not trusted. */
        trustedFingerprints: z.array(fingerprint).min(1).default(defaultTrustedFingerprints),
        /** Warn when the newest valid signing subkey expires within this many days. */
        expiryWarningDays: z.number().int().min(1).max(365).default(30),
        /** How far in the future a signature may be dated (clock skew). */
        maxClockSkewSeconds: z.number().int().min(0).max(3600).default(300),
        /** A warm function reads the trust object again when its keyring is older than this. */
        refreshSeconds: z.number().int().min(1).max(86_400).default(300),
        /** A signature by a key not in the keyring re-reads the trust at most this often. */
        unknownSignerRecheckSeconds: z.number().int().min(0).max(3600).default(10),
      })
      .default({
        files: defaultKeyringFiles,
        trustedFingerprints: defaultTrustedFingerprints,
        expiryWarningDays: 30,
        maxClockSkewSeconds: 300,
        refreshSeconds: 300,
        unknownSignerRecheckSeconds: 10,
      }),
    schedule: z
      .strictObject({
        /** How often the poller reads every channel's current/version.txt. */
        everyMinutes: z.number().int().min(1).max(1440).default(15),
        /** A pending artifact with no progress for this long is enqueued again. */
        stallAfterMinutes: z.number().int().min(1).max(1440).default(60),
      })
      .default({ everyMinutes: 15, stallAfterMinutes: 60 }),
    store: storeSchema.default({ kind: 'local', path: 'data/mirror' }),
    queue: z
      .strictObject({
        jobs: awsName.default('cldist-jobs'),
        deadLetter: awsName.default('cldist-jobs-dlq'),
        /**
         * The one retry schedule of a job that failed transiently, on both hosts: it comes back after
         * `firstDelaySeconds`, doubling per delivery up to `maxDelaySeconds`, and is dead-lettered after
         * `maxReceives` deliveries. AWS: the queue's redrive policy and the worker's visibility change; one
         * machine: the same on the stand-in queue.
         */
        retry: z
          .strictObject({
            maxReceives: z.number().int().min(1).max(1000).default(5),
            firstDelaySeconds: z.number().int().min(0).max(43_200).default(5),
            maxDelaySeconds: z.number().int().min(0).max(43_200).default(300),
          })
          .refine((r) => r.maxDelaySeconds >= r.firstDelaySeconds, {
            message: 'maxDelaySeconds must be at least firstDelaySeconds',
            path: ['maxDelaySeconds'],
          })
          .default({ maxReceives: 5, firstDelaySeconds: 5, maxDelaySeconds: 300 }),
      })
      .default({
        jobs: 'cldist-jobs',
        deadLetter: 'cldist-jobs-dlq',
        retry: { maxReceives: 5, firstDelaySeconds: 5, maxDelaySeconds: 300 },
      }),
    table: awsName.default('cldist-ledger'),
    topic: awsName.default('cldist-events'),
    limits: z
      .strictObject({
        maxArtifactBytes: z
          .number()
          .int()
          .positive()
          .default(8 * 1024 * MiB),
        maxSignatureBytes: z
          .number()
          .int()
          .min(64)
          .max(MiB)
          .default(64 * 1024),
        maxVersionFileBytes: z
          .number()
          .int()
          .min(64)
          .max(MiB)
          .default(64 * 1024),
        maxResumes: z.number().int().min(0).max(100).default(5),
        requestTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
      })
      .default({
        maxArtifactBytes: 8 * 1024 * MiB,
        maxSignatureBytes: 64 * 1024,
        maxVersionFileBytes: 64 * 1024,
        maxResumes: 5,
        requestTimeoutSeconds: 30,
      }),
    worker: z
      .strictObject({
        concurrency: z.number().int().min(1).max(64).default(2),
        partSizeMiB: z.number().int().min(5).max(512).default(8),
        partsInFlight: z.number().int().min(1).max(16).default(4),
        /**
         * Single machine: mirroring pauses while the data dir's filesystem has less free space than this
         * (and resumes with a quarter more), so a full disk never starves the ledger and config store; 0
         * turns the guard off. The AWS shape stores into S3 and has no disk to watch.
         */
        minFreeDiskMiB: z
          .number()
          .int()
          .min(0)
          .max(1024 * 1024)
          .default(256),
      })
      .default({ concurrency: 2, partSizeMiB: 8, partsInFlight: 4, minFreeDiskMiB: 256 }),
    api: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Accept Ignition 2.x configs (for old CoreOS images). Off: only spec 3.x. */
        allowLegacyIgnition: z.boolean().default(false),
        /** The URL instances use to reach the API; defaults to http://host:port. */
        publicBaseUrl: z.url().optional(),
        /**
         * Days a fetch audit entry is kept: DynamoDB's TTL removes it on AWS, a daily sweep on one machine.
         * Refused fetches without the token are never stored, only counted.
         */
        auditRetentionDays: z.number().int().min(1).max(3650).default(90),
        /** `reject` refuses an Ignition config with a key the spec does not have; `warn` accepts it, as Ignition does. */
        unknownIgnitionKeys: z.enum(['warn', 'reject']).default('warn'),
      })
      .default({
        host: '127.0.0.1',
        port: 8080,
        allowLegacyIgnition: false,
        auditRetentionDays: 90,
        unknownIgnitionKeys: 'warn',
      }),
    /** Where instance configs live and how much memory the instance caches may take. */
    instances: instancesSchema,
    notifications: z.strictObject({ webhooks: z.array(z.url()).default([]) }).default({ webhooks: [] }),
    /** The fleet view: how Omaha check-ins are recorded, counted and watched. */
    fleet: fleetConfigSchema,
    platform: z
      .strictObject({
        /** An Ignition 3.x config (networking, an agent, files) every instance gets besides its own. */
        baseIgnition: baseIgnition.optional(),
      })
      .default({}),
    boot: z
      .strictObject({
        /**
         * The mirror as network-booting machines reach it: kernel, initramfs and flatcar-install's `-b` are
         * under it. Default: the API's public base URL with `/mirror` (one machine). GRUB needs http://.
         */
        mirrorBaseUrl: z.url().optional(),
        /** Boots machines no instance matches with this profile (and no Ignition config). Off by default. */
        defaultProfile: plainName.optional(),
        /** Seconds a machine that cannot boot yet (unknown, nothing mirrored) waits before asking again. */
        retrySeconds: z.number().int().min(5).max(3600).default(30),
        /** Minutes a boot token (the Ignition URL in a script) works after the script was served. */
        tokenTtlMinutes: z.number().int().min(1).max(10_080).default(60),
      })
      .default({ retrySeconds: 30, tokenTtlMinutes: 60 }),
    metadata: z
      .strictObject({
        /** Refuse IMDSv1 (EC2 metadata GETs without a session token), as an EC2 instance can be set to. */
        requireImdsV2: z.boolean().default(false),
        /**
         * One machine: the file holding the metadata proxy's shared secret(s), one per line, the first
         * current; without it the proxied metadata routes answer 404.
         */
        proxySecretFile: z.string().min(1).optional(),
      })
      .default({ requireImdsV2: false }),
    /** Mirroring of Flatcar update payloads (see `updateSchema`); absent, none are mirrored. */
    update: updateSchema.optional(),
  })
  .superRefine(checkSources)
  .transform(({ sources, channels, boards, artifacts, ...rest }) => {
    const legacy = channels !== undefined || boards !== undefined || artifacts !== undefined;
    const inputs = sources ?? [
      sourceSchema.parse(legacy ? legacySource({ channels, boards, artifacts }) : { name: 'flatcar' }),
    ];
    return { ...rest, sources: inputs.map(resolveSource) };
  });

/** The parts of the parsed config that the cross-source rules read. */
interface SourcesView {
  sources?: z.output<typeof sourceSchema>[] | undefined;
  keyring: { trustedFingerprints: string[] };
  channels?: unknown;
  boards?: unknown;
  artifacts?: unknown;
}

/** Rules across sources and between sources and the keyring, each at the field to fix. */
function checkSources(config: SourcesView, ctx: z.RefinementCtx): void {
  const { sources } = config;
  if (sources === undefined) return;
  for (const key of legacyKeys) {
    if (config[key] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `the top-level "${key}" cannot be combined with "sources"; move it into each source`,
      });
    }
  }
  const names = new Set<string>();
  const paths = new Set<string>();
  for (const [i, source] of sources.entries()) {
    if (names.has(source.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['sources', i, 'name'],
        message: `"${source.name}" is used twice`,
      });
    }
    names.add(source.name);
    const path = source.mirrorPath ?? source.name;
    if (path === '' && sources.length > 1) {
      const message = 'an empty mirror path is only for a single source; give each source its own folder';
      ctx.addIssue({ code: 'custom', path: ['sources', i, 'mirrorPath'], message });
    } else if (paths.has(path)) {
      const message = `"${path}" is another source's mirror path; give each source its own folder`;
      ctx.addIssue({ code: 'custom', path: ['sources', i, 'mirrorPath'], message });
    }
    paths.add(path);
    for (const [k, key] of (source.keys ?? []).entries()) {
      if (!config.keyring.trustedFingerprints.includes(key)) {
        const message = `${key} is not in keyring.trustedFingerprints; a source trusts a subset of the keyring`;
        ctx.addIssue({ code: 'custom', path: ['sources', i, 'keys', k], message });
      }
    }
  }
}

export { formatIssues } from './config-issues.ts';
export type { SourceChannel, SourceConfig } from './config-sources.ts';

export type CldistConfig = z.output<typeof configSchema>;
export type ArtifactConfig = SourceConfig['artifacts'][number];
export type UpdateConfig = NonNullable<CldistConfig['update']>;

/** Validate a plain object once, at start; every later reader gets a typed, defaulted config. */
export function parseConfig(input: unknown, source = 'config'): CldistConfig {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new ConfigError(`${source} is invalid:\n${formatIssues(result.error, '', configSchema)}`);
  }
  return result.data;
}

export function loadConfigFile(path: string): CldistConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${path}; pass an existing JSON file with --config`, {
      cause,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return parseConfig(raw, `config file ${path}`);
}

/** Keyring paths in the config are relative to the project root unless absolute. */
export function resolveProjectPath(path: string): string {
  return isAbsolute(path) ? path : resolve(projectRoot, path);
}
