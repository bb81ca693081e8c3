import * as z from 'zod';
import { formatIssues } from './config.ts';
import { PermanentError } from './errors.ts';

/** Digits and dots only: a version is used in URLs and store keys, so nothing else may pass. */
export const versionPattern = /^[0-9]+(\.[0-9]+){0,5}$/;

const segment = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a plain name')
  .refine((name) => !name.includes('..'), 'a plain name, without ".."');

/** One job per artifact of a release; the queue body. */
export const mirrorJobSchema = z.strictObject({
  v: z.literal(1),
  /** The configured source the release belongs to. */
  source: segment,
  channel: segment,
  board: segment,
  version: z.string().max(64).regex(versionPattern, 'a version of digits and dots'),
  artifact: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/, 'a plain file name')
    .refine((name) => !name.includes('..'), 'a plain file name, without ".."'),
  url: z.url({ protocol: /^https?$/ }),
  signatureUrl: z.url({ protocol: /^https?$/ }),
});

export type MirrorJob = z.infer<typeof mirrorJobSchema>;

/** A malformed queue message is permanent: retrying cannot fix it. */
export function parseMirrorJob(body: string): MirrorJob {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (cause) {
    throw new PermanentError('malformed-message', `job message is not JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  const result = mirrorJobSchema.safeParse(raw);
  if (!result.success) {
    throw new PermanentError('malformed-message', `job message is invalid: ${formatIssues(result.error)}`);
  }
  return result.data;
}

export const eventNames = [
  'release.mirrored',
  'release.pruned',
  'artifact.verification_failed',
  'artifact.missing',
  'signing_key.expiring',
  'signing_key.unknown',
  'update.rolled_out',
  'update.failed_rate',
] as const;
export type EventName = (typeof eventNames)[number];

/**
 * A notification. `event`, `source`, `channel` and `board` also travel as SNS message attributes so
 * subscribers can filter without parsing the body.
 */
export interface CldistEvent {
  event: EventName;
  /** The configured source (`*` for an event about the keyring as a whole). */
  source: string;
  channel: string;
  board: string;
  version?: string;
  artifact?: string;
  /** ISO-8601 time the event was raised. */
  at: string;
  detail: Record<string, unknown>;
}
