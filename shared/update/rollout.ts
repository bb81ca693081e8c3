import { createHash } from 'node:crypto';
import { type Rollout, type UpdateWindow, weekdays } from './groups.ts';

/**
 * The pure arithmetic of a rollout: which share of a group is offered its target now, where one machine
 * falls in that order, and whether the update window is open. Nothing here reads a clock or a store.
 */

const minuteMs = 60_000;

/**
 * The share (0 to 100) of the group offered the target at `now`: linear from `startPercent` at
 * `targetSince` to `percent` at `targetSince + overMinutes`, then flat.
 */
export function rolloutShare(rollout: Rollout, targetSince: Date, now: Date): number {
  if (rollout.kind !== 'percent') return 100;
  const { percent, startPercent, overMinutes } = rollout;
  const from = Math.min(startPercent, percent);
  if (overMinutes === 0) return percent;
  const progress = (now.getTime() - targetSince.getTime()) / (overMinutes * minuteMs);
  const clamped = Math.min(1, Math.max(0, progress));
  return from + (percent - from) * clamped;
}

/**
 * Where a machine falls, in [0, 100): the first 48 bits of SHA-256 over group, target version and machine
 * ID. Stable for a machine while the target stands, so a machine admitted at 10 % stays admitted at 20 %;
 * a new target reshuffles the order, so no machine is always the first to get a release.
 */
export function machinePosition(group: string, version: string, machineId: string): number {
  const digest = createHash('sha256').update(`${group}\n${version}\n${machineId.toLowerCase()}`).digest();
  return (digest.readUIntBE(0, 6) / 2 ** 48) * 100;
}

/** True when the machine's position is inside the share offered now. */
export function admittedByShare(share: number, position: number): boolean {
  return position < share;
}

function minutesOf(hhmm: string): number {
  const [hours, minutes] = hhmm.split(':').map(Number);
  return (hours ?? 0) * 60 + (minutes ?? 0);
}

/**
 * Whether an update may be offered at `now` (UTC). A window over midnight belongs to the day it opens:
 * `22:00`–`04:00` on `sat` is open from Saturday 22:00 to Sunday 04:00. Start equal to end: all day.
 */
export function windowOpen(window: UpdateWindow | undefined, now: Date): boolean {
  if (window === undefined) return true;
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
  const today = weekdays[now.getUTCDay()] ?? 'sun';
  const yesterday = weekdays[(now.getUTCDay() + 6) % 7] ?? 'sat';
  const opensOn = (day: (typeof weekdays)[number]) => window.days === undefined || window.days.includes(day);
  if (start === end) return opensOn(today);
  if (start < end) return opensOn(today) && minute >= start && minute < end;
  return (opensOn(today) && minute >= start) || (opensOn(yesterday) && minute < end);
}

/** The start of the period `now` falls in, periods counted from the Unix epoch; an ISO time. */
export function periodStart(periodMinutes: number, now: Date): string {
  const length = periodMinutes * minuteMs;
  return new Date(Math.floor(now.getTime() / length) * length).toISOString();
}
