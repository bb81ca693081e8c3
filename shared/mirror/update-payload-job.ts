import * as z from 'zod';
import { formatIssues } from '../config.ts';
import { PermanentError } from '../errors.ts';
import { versionPattern } from '../messages.ts';

const plainName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a plain name')
  .refine((name) => !name.includes('..'), 'a plain name, without ".."');

/** One job per update payload of a release; the queue body, told from an artifact job by `kind`. */
export const updatePayloadJobSchema = z.strictObject({
  v: z.literal(1),
  kind: z.literal('update-payload'),
  /** The source and channel whose poll found the release: its alerts are raised on them. */
  source: plainName,
  channel: plainName,
  board: plainName,
  version: z.string().max(64).regex(versionPattern, 'a version of digits and dots'),
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/, 'a plain file name')
    .refine((name) => !name.includes('..'), 'a plain file name, without ".."'),
  url: z.url({ protocol: /^https?$/ }),
});

export type UpdatePayloadJob = z.infer<typeof updatePayloadJobSchema>;

/** True when a queue body is meant as an update payload job (whether or not it is a valid one). */
export function isUpdatePayloadMessage(body: string): boolean {
  try {
    const raw: unknown = JSON.parse(body);
    return typeof raw === 'object' && raw !== null && (raw as { kind?: unknown }).kind === 'update-payload';
  } catch {
    return false;
  }
}

/** A malformed queue message is permanent: retrying cannot fix it. */
export function parseUpdatePayloadJob(body: string): UpdatePayloadJob {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (cause) {
    throw new PermanentError('malformed-message', `job message is not JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  const result = updatePayloadJobSchema.safeParse(raw);
  if (!result.success) {
    throw new PermanentError(
      'malformed-message',
      `update payload job message is invalid: ${formatIssues(result.error)}`,
    );
  }
  return result.data;
}
