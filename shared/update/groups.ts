import * as z from 'zod';
import { formatIssues } from '../config-issues.ts';
import { versionPattern } from '../messages.ts';

/**
 * Update groups: what an instance's `track` (its `GROUP=` in `/etc/flatcar/update.conf`) is offered.
 * A group follows one channel's current mirrored version or is pinned to one version, may be paused,
 * limits how fast a new version reaches its instances, and may only offer updates inside a window.
 */

/** A group name is what instances send as `track`, so it keeps to the same shape. */
export const groupNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const plainName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a plain lower-case channel name such as "stable"');

const hourMinute = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'a UTC time as HH:MM, e.g. "02:00"');

export const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

const rolloutSchema = z.discriminatedUnion('kind', [
  /** Every instance of the group is offered the target at once. */
  z.strictObject({ kind: z.literal('all') }),
  /**
   * A share of the group's instances, growing linearly from `startPercent` to `percent` over
   * `overMinutes` after the target version became the target (0: at once).
   */
  z.strictObject({
    kind: z.literal('percent'),
    percent: z.number().min(0).max(100).default(100),
    startPercent: z.number().min(0).max(100).default(0),
    overMinutes: z
      .number()
      .int()
      .min(0)
      .max(60 * 24 * 90)
      .default(0),
  }),
  /** At most `maxUpdates` distinct instances are offered the target in each period. */
  z.strictObject({
    kind: z.literal('per-period'),
    maxUpdates: z.number().int().min(1).max(5000),
    periodMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 31),
  }),
]);

const windowSchema = z.strictObject({
  /** UTC. A window whose end is before its start runs over midnight. */
  start: hourMinute,
  end: hourMinute,
  /** Days (UTC) on which the window opens; all days when absent. */
  days: z.array(z.enum(weekdays)).min(1).max(7).optional(),
});

/** What an operator sends to create or replace a group. */
export const groupInputSchema = z.strictObject({
  channel: plainName,
  paused: z.boolean().default(false),
  /** A pinned version; absent: follow the channel's current mirrored version. */
  version: z.string().regex(versionPattern, 'a version of digits and dots, e.g. 4081.2.0').max(64).optional(),
  rollout: rolloutSchema.default({ kind: 'all' }),
  window: windowSchema.optional(),
  description: z.string().max(500).optional(),
});

export type UpdateGroupInput = z.infer<typeof groupInputSchema>;
/** What a caller may send: defaults not yet applied. */
export type UpdateGroupRequest = z.input<typeof groupInputSchema>;
export type Rollout = z.infer<typeof rolloutSchema>;
export type UpdateWindow = z.infer<typeof windowSchema>;

/** A stored group. */
export interface UpdateGroup extends UpdateGroupInput {
  readonly name: string;
  readonly updatedAt: string;
  /** When the pinned version was set: a percentage rollout of a pinned version grows from here. */
  readonly pinnedAt?: string;
}

/** Where groups live (the ledger's update group part), and the per-period cap's shared counter. */
export interface UpdateGroupStore {
  /** Creates or replaces a group; true when it did not exist before. */
  putGroup(group: UpdateGroup): Promise<boolean>;
  getGroup(name: string): Promise<UpdateGroup | undefined>;
  /** Every group, by name. */
  listGroups(): Promise<UpdateGroup[]>;
  /** True when the group existed. */
  deleteGroup(name: string): Promise<boolean>;
  /**
   * Admits `machineId` in the group's period starting at `periodStart` unless `max` other machines were
   * admitted in it already; concurrent calls must never admit more than `max`. A machine admitted once
   * stays admitted for the rest of the period (it asks again after a failed download).
   */
  admitInPeriod(
    group: string,
    periodStart: string,
    machineId: string,
    max: number,
    expiresAt: Date,
  ): Promise<boolean>;
}

/** A channel's current mirrored version on one board, and since when (the ledger's `current`). */
export interface ChannelCurrent {
  readonly version: string;
  readonly updatedAt: string;
}

/** Reads the channel's current mirrored version for a board. */
export interface ChannelCurrentReader {
  getCurrent(channel: string, board: string): Promise<ChannelCurrent | undefined>;
}

export class InvalidGroupError extends Error {
  readonly code = 'invalid-group';
  readonly issues: { path: string; message: string }[];
  constructor(message: string, issues: { path: string; message: string }[]) {
    super(message);
    this.name = 'InvalidGroupError';
    this.issues = issues;
  }
}

/** The checked input, or an {@link InvalidGroupError} naming each bad field. */
export function parseGroupInput(body: unknown): UpdateGroupInput {
  const result = groupInputSchema.safeParse(body);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: `$${issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('')}`,
    message: issue.message,
  }));
  throw new InvalidGroupError(
    `group is invalid:\n${formatIssues(result.error, '', groupInputSchema)}`,
    issues,
  );
}

/** A group's name is what instances send as `track`. */
export function checkGroupName(name: string): string | undefined {
  return groupNamePattern.test(name)
    ? undefined
    : `group name ${JSON.stringify(name.slice(0, 70))} is not a track name (letters, digits, ".", "_", "-"; at most 63)`;
}
