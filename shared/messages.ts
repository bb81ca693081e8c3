import * as z from 'zod';
import { formatIssues } from './config.ts';
import { PermanentError } from './errors.ts';

/** Digits and dots only: a version is used in URLs and store keys, so nothing else may pass. */
export const versionPattern = /^[0-9]+(\.[0-9]+){0,5}$/;

const plainName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a plain name')
  .refine((name) => !name.includes('..'), 'a plain name, without ".."');

/** A file name as a release lists it: it becomes the last part of a store key, so no path gets through. */
export const jobFileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/, 'a plain file name')
  .refine((name) => !name.includes('..'), 'a plain file name, without ".."');

/** Where a job fetches from: http or https only, never a local file. */
export const jobUrl = z.url({ protocol: /^https?$/ });

/**
 * The schema of one kind of job message (a queue body): the release it belongs to, under the body's
 * version 1, and the kind's own fields. Every kind names its release with the same rules, so a name that
 * could escape a store key is refused whichever queue carries it.
 */
export function jobMessageSchema<Fields extends z.ZodRawShape>(fields: Fields) {
  return z.strictObject({
    v: z.literal(1),
    /** The configured source the release belongs to. */
    source: plainName,
    channel: plainName,
    board: plainName,
    version: z.string().max(64).regex(versionPattern, 'a version of digits and dots'),
    ...fields,
  });
}

/**
 * The parser of one kind of job message, `what` naming it in errors. A malformed message is permanent:
 * retrying cannot fix it.
 */
export function jobMessageParser<T>(schema: z.ZodType<T>, what: string): (body: string) => T {
  return (body) => {
    let raw: unknown;
    try {
      raw = JSON.parse(body);
    } catch (cause) {
      throw new PermanentError('malformed-message', `${what} is not JSON: ${(cause as Error).message}`, {
        cause,
      });
    }
    const result = schema.safeParse(raw);
    if (!result.success) {
      throw new PermanentError('malformed-message', `${what} is invalid: ${formatIssues(result.error)}`);
    }
    return result.data;
  };
}

/** One job per artifact of a release; the queue body. */
export const mirrorJobSchema = jobMessageSchema({
  artifact: jobFileName,
  url: jobUrl,
  signatureUrl: jobUrl,
});

export type MirrorJob = z.infer<typeof mirrorJobSchema>;

export const parseMirrorJob: (body: string) => MirrorJob = jobMessageParser(mirrorJobSchema, 'job message');

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
