import * as z from 'zod';
import { jobFileName, jobMessageParser, jobMessageSchema, jobUrl } from '../messages.ts';

/**
 * One job per update payload of a release; the queue body, told from an artifact job by `kind`. Its
 * source and channel are those whose poll found the release: its alerts are raised on them.
 */
export const updatePayloadJobSchema = jobMessageSchema({
  kind: z.literal('update-payload'),
  name: jobFileName,
  url: jobUrl,
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

export const parseUpdatePayloadJob: (body: string) => UpdatePayloadJob = jobMessageParser(
  updatePayloadJobSchema,
  'update payload job message',
);
