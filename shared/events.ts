import * as z from 'zod';
import { formatIssues } from './config.ts';
import { PermanentError } from './errors.ts';
import { type EventName, versionPattern } from './messages.ts';
import type { PayloadRefusal } from './update/errors.ts';
import type { SignatureFailure } from './verify/types.ts';

/**
 * The notification contract with subscribers, as zod schemas: the same objects give the TypeScript types, the
 * parser a subscriber can use (`parseEvent`) and the JSON Schemas in docs/events.md (`eventJsonSchemas`),
 * so the code, the doc and a subscriber cannot drift apart without a test failing.
 */

const signatureFailures = [
  'garbage-signature',
  'unknown-key',
  'untrusted-key',
  'tampered',
  'truncated',
  'future-signature',
  'weak-hash',
  'subkey-revoked-compromised',
  'subkey-revoked-before-signing',
  'key-not-valid-at-signing',
  'not-signing-capable',
] as const satisfies readonly SignatureFailure[];
const payloadRefusals = [
  'crau-format',
  'crau-truncated',
  'crau-trailing-data',
  'crau-signature',
  'sha256-mismatch',
  'sha256-unreadable',
] as const satisfies readonly PayloadRefusal[];
type UnlistedRefusal = Exclude<PayloadRefusal, (typeof payloadRefusals)[number]>;
const everyRefusalListed: UnlistedRefusal extends never ? true : never = true;
void everyRefusalListed;

/** Fails to compile if a signature failure is added without being listed above. */
type Unlisted = Exclude<SignatureFailure, (typeof signatureFailures)[number]>;
const everyFailureListed: Unlisted extends never ? true : never = true;
void everyFailureListed;

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/);
const fingerprint = z.string().regex(/^[0-9A-F]{40}$/, '40 upper-case hex digits');
const release = {
  source: name.describe('the configured source, e.g. `flatcar` or `coreos`'),
  channel: name.describe('the channel, e.g. `stable`'),
  board: name.describe('the board, e.g. `amd64-usr`'),
  version: z.string().regex(versionPattern).describe('the release version, e.g. `4081.2.0`'),
  at: z.iso.datetime().describe('when the event was raised (ISO-8601, UTC)'),
};
const artifact = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/)
  .describe('the file name in the release folder');

export const releaseMirroredSchema = z
  .strictObject({
    event: z.literal('release.mirrored'),
    ...release,
    detail: z.strictObject({
      artifacts: z.array(artifact).describe('every artifact now in the mirror, verified'),
      missing: z.array(artifact).describe('optional artifacts the upstream release did not ship'),
      failedVerification: z.array(artifact).describe('optional artifacts refused, so absent from the mirror'),
      currentAdvanced: z.boolean().describe("the mirror's `current/version.txt` now names this release"),
      manifestKey: z
        .string()
        .describe('store key of `release.json`: size, SHA-512 and signer of each artifact'),
    }),
  })
  .describe('Every required artifact of a release is verified and stored; sent once per release.');

export const releasePrunedSchema = z
  .strictObject({
    event: z.literal('release.pruned'),
    ...release,
    detail: z.strictObject({
      reason: z
        .literal('retention')
        .describe('why it went: older than the newest `keepReleases` mirrored releases of its stream'),
      keepReleases: z
        .number()
        .int()
        .min(1)
        .describe('the `keepReleases` setting in force when the prune began'),
      pruningSince: z.iso
        .datetime()
        .describe('when the prune began (a run that died may have left it to a later one)'),
      storePrefix: z.string().describe('the store prefix of the release folder, now empty'),
    }),
  })
  .describe(
    'Retention deleted a mirrored release: its files are gone from the mirror and its records from the ledger. Sent once per release, after the deletion; a run that dies just after sending may send it again.',
  );

export const artifactMissingSchema = z
  .strictObject({
    event: z.literal('artifact.missing'),
    ...release,
    artifact,
    detail: z.strictObject({
      url: z.url().describe('the URL that answered 404'),
      message: z.string(),
    }),
  })
  .describe('The upstream answered 404 for an artifact of a release.');

export const artifactVerificationFailedSchema = z
  .strictObject({
    event: z.literal('artifact.verification_failed'),
    ...release,
    artifact,
    detail: z.strictObject({
      reason: z
        .enum([...signatureFailures, 'digests-mismatch', ...payloadRefusals, 'unknown'])
        .describe(
          'why: a signature rule, `digests-mismatch` when the bytes disagree with the signed DIGESTS, or for an update payload a `crau-*` or `sha256-*` refusal',
        ),
      message: z.string(),
      url: z.url().optional().describe('where the artifact was downloaded from (signature refusals)'),
      kind: z
        .literal('update-payload')
        .optional()
        .describe(
          'set for an update payload (from the update origin, stored under `update/`): `artifact` names the payload, `channel` the channel whose poll found its release',
        ),
      sha512: z
        .string()
        .regex(/^[0-9a-f]{128}$/)
        .optional()
        .describe('SHA-512 of the refused bytes (`digests-mismatch`)'),
    }),
  })
  .describe('An artifact was refused: nothing of it is stored, and it is not retried.');

export const signingKeyExpiringSchema = z
  .strictObject({
    event: z.literal('signing_key.expiring'),
    source: z.literal('*'),
    channel: z.literal('*'),
    board: z.literal('*'),
    at: release.at,
    detail: z.strictObject({
      primaryKeyFingerprint: fingerprint,
      signingKeyFingerprint: fingerprint,
      expires: z.iso.datetime().optional().describe('when the signing subkey expires'),
    }),
  })
  .describe('The newest valid signing subkey of a trusted key expires soon: import the rotated key.');

export const signingKeyUnknownSchema = z
  .strictObject({
    event: z.literal('signing_key.unknown'),
    ...release,
    detail: z.strictObject({
      keyId: z
        .string()
        .regex(/^([0-9A-F]{16}|[0-9A-F]{40}|unknown)$/i)
        .describe('the key ID (or fingerprint) that made the signature, as the signature names it'),
      upload: z.string().describe('where the trusted keyring is read from: put the rotated public key there'),
      advice: z.string().describe('what to do, in one sentence'),
      artifact,
      url: z.url().describe('where the artifact whose signature names the key was downloaded from'),
    }),
  })
  .describe(
    'An artifact is signed by a key the trusted keyring does not hold: it waits (not refused) until the key is uploaded. Sent once per key and trust version.',
  );

const fleetGroup = {
  group: z.string().min(1).max(128).describe("the update group: the instances' `GROUP=` (Omaha `track`)"),
  instances: z.number().int().min(1).describe('active instances of the group on this board'),
};

export const updateRolledOutSchema = z
  .strictObject({
    event: z.literal('update.rolled_out'),
    source: z
      .union([name, z.literal('*')])
      .describe('the source of the channel named like the group, or `*` for a group named otherwise'),
    channel: name.describe("the update group (an instance's `GROUP=`, the channel name by default)"),
    board: release.board,
    version: release.version.describe('the version every active instance of the group now runs'),
    at: release.at,
    detail: z.strictObject({
      ...fleetGroup,
      updated: z
        .number()
        .int()
        .min(1)
        .describe('instances of the group that reported booting into this version (update complete)'),
    }),
  })
  .describe(
    'Every active instance of an update group runs one version, reached by an update: the rollout is complete. Sent once per group, board and version.',
  );

export const updateFailedRateSchema = z
  .strictObject({
    event: z.literal('update.failed_rate'),
    source: updateRolledOutSchema.shape.source,
    channel: updateRolledOutSchema.shape.channel,
    board: release.board,
    version: release.version.describe('the version the failing instances were updating to'),
    at: release.at,
    detail: z.strictObject({
      group: fleetGroup.group,
      updating: z.number().int().min(1).describe('active instances offered this version or updated to it'),
      failed: z.number().int().min(1).describe('of those, instances whose last event is an error'),
      rate: z.number().gt(0).max(1).describe('failed / updating'),
      threshold: z.number().gt(0).max(1).describe('`fleet.failedRate.threshold`, which the rate exceeded'),
      errorCodes: z
        .record(z.string().regex(/^\d+$/), z.number().int().min(1))
        .describe("update_engine's error codes of the failures, with how many instances reported each"),
    }),
  })
  .describe(
    'Among the instances updating to a version, the share whose last event is an error exceeded the configured threshold. Sent once per group, board and version.',
  );

export const eventSchemas = {
  'release.mirrored': releaseMirroredSchema,
  'release.pruned': releasePrunedSchema,
  'artifact.missing': artifactMissingSchema,
  'artifact.verification_failed': artifactVerificationFailedSchema,
  'signing_key.expiring': signingKeyExpiringSchema,
  'signing_key.unknown': signingKeyUnknownSchema,
  'update.rolled_out': updateRolledOutSchema,
  'update.failed_rate': updateFailedRateSchema,
} as const satisfies Record<EventName, z.ZodType>;

export const eventSchema = z.discriminatedUnion('event', [
  releaseMirroredSchema,
  releasePrunedSchema,
  artifactMissingSchema,
  artifactVerificationFailedSchema,
  signingKeyExpiringSchema,
  signingKeyUnknownSchema,
  updateRolledOutSchema,
  updateFailedRateSchema,
]);
export type PublishedEvent = z.infer<typeof eventSchema>;
export type ReleaseMirroredEvent = z.infer<typeof releaseMirroredSchema>;
export type ReleasePrunedEvent = z.infer<typeof releasePrunedSchema>;
export type UpdateRolledOutEvent = z.infer<typeof updateRolledOutSchema>;
export type UpdateFailedRateEvent = z.infer<typeof updateFailedRateSchema>;

/** JSON Schema (draft 2020-12) of each event, as docs/events.md shows them. */
export function eventJsonSchemas(): Record<EventName, Record<string, unknown>> {
  const out: Partial<Record<EventName, Record<string, unknown>>> = {};
  for (const [event, schema] of Object.entries(eventSchemas) as [EventName, z.ZodType][]) {
    out[event] = z.toJSONSchema(schema, {
      // zod spells out its date-time regex; `format: date-time` says the same to a reader and a validator.
      override: (ctx) => {
        if (ctx.jsonSchema.format === 'date-time') delete ctx.jsonSchema.pattern;
      },
    }) as Record<string, unknown>;
  }
  return out as Record<EventName, Record<string, unknown>>;
}

/** A message body from SNS, SQS or a webhook; anything that is not one of the events is permanent. */
export function parseEvent(body: string): PublishedEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (cause) {
    throw new PermanentError('malformed-event', `event is not JSON: ${(cause as Error).message}`, { cause });
  }
  const result = eventSchema.safeParse(raw);
  if (!result.success) {
    throw new PermanentError('malformed-event', `not a cldist event: ${formatIssues(result.error)}`);
  }
  return result.data;
}
