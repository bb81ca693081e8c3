import type { ConfigProblem } from './config-issues.ts';
import { editDistance, nearestName } from './nearest-name.ts';

/**
 * Boards Flatcar builds and publishes on its release servers (`https://{channel}.release.flatcar-linux.net/
 * {board}/`): x86-64 and 64-bit ARM. `flatcar-install -B` takes the same names; see
 * https://www.flatcar.org/docs/latest/installing/bare-metal/installing-to-disk/.
 */
export const knownBoards = ['amd64-usr', 'arm64-usr'] as const;

/**
 * Flatcar's release channels, from https://www.flatcar.org/docs/latest/setup/releases/switching-channels/:
 * alpha, beta, stable, and LTS, which starts a new stream about once a year. Streams are named by year
 * (`LTS-2021`, `LTS-2022` in the project's release list, https://github.com/flatcar/flatcar-website/pull/229),
 * so `lts-2024` is accepted, and `current-2024` too, the name operators give a stream they follow as a
 * channel. No public page lists a stream's own release-server host, so neither is checked further.
 */
export const knownChannels = ['stable', 'beta', 'alpha', 'lts'] as const;

const ltsStream = /^(lts|current)-(\d{4})$/;

export type NameVerdict =
  | { kind: 'known' }
  /** Close to a known name: most likely a typo, so an error. */
  | { kind: 'typo'; suggestion: string }
  /** Well-formed but not a name upstream publishes (a private origin may): a warning. */
  | { kind: 'unknown'; suggestion?: string };

/** LTS streams started with LTS-2021 (the first yearly stream); later years are accepted by pattern. */
const streamYears = Array.from({ length: 20 }, (_, i) => 2021 + i);

function candidates(kind: 'board' | 'channel'): string[] {
  if (kind === 'board') return [...knownBoards];
  return [...knownChannels, ...streamYears.flatMap((year) => [`lts-${year}`, `current-${year}`])];
}

/**
 * The rule: a known name (or an LTS stream name) passes. An unknown one within nearestName's typo distance
 * of a known one (at most a third of its length, at least 1: `amd64-us`, `stabel`, `curent-2024`) is an
 * error, because a board or channel nobody publishes would only ever poll a 404. Anything further away is
 * a warning that still names the closest known name, since a private origin may publish other names.
 */
export function judgeName(kind: 'board' | 'channel', name: string): NameVerdict {
  if (kind === 'board' ? (knownBoards as readonly string[]).includes(name) : isKnownChannel(name)) {
    return { kind: 'known' };
  }
  const options = candidates(kind);
  const typo = nearestName(name, options);
  if (typo !== undefined) return { kind: 'typo', suggestion: typo };
  let closest: string | undefined;
  let best = Number.POSITIVE_INFINITY;
  for (const option of options) {
    const distance = editDistance(name.toLowerCase(), option);
    if (distance < best) {
      closest = option;
      best = distance;
    }
  }
  return closest === undefined ? { kind: 'unknown' } : { kind: 'unknown', suggestion: closest };
}

export function isKnownChannel(name: string): boolean {
  return (knownChannels as readonly string[]).includes(name) || ltsStream.test(name);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * Board and channel names in a raw config (read before the schema, so a config with other errors still
 * gets these): typos as errors, other unknown names as warnings. Malformed entries are the schema's to
 * report. Both shapes are read: `sources[].channels[]` with their boards, and the old top-level lists.
 */
export function checkNames(raw: unknown): { errors: ConfigProblem[]; warnings: ConfigProblem[] } {
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const config = asRecord(raw);
  const judge = (kind: 'board' | 'channel', name: unknown, path: string) => {
    if (typeof name !== 'string') return;
    const verdict = judgeName(kind, name);
    if (verdict.kind === 'typo') {
      errors.push({ path, message: `unknown ${kind} "${name}"`, suggestion: verdict.suggestion });
    } else if (verdict.kind === 'unknown') {
      const message = `"${name}" is not a ${kind} Flatcar publishes (fine if your origin does)`;
      warnings.push({
        path,
        message,
        ...(verdict.suggestion === undefined ? {} : { suggestion: verdict.suggestion }),
      });
    }
  };
  const boards = (list: unknown, path: string) => {
    if (!Array.isArray(list)) return;
    for (const [i, board] of list.entries()) judge('board', board, `${path}.${i}`);
  };
  const channels = (list: unknown, path: string) => {
    if (!Array.isArray(list)) return;
    for (const [i, channel] of list.entries()) {
      judge('channel', asRecord(channel)?.name, `${path}.${i}.name`);
      boards(asRecord(channel)?.boards, `${path}.${i}.boards`);
    }
  };
  boards(config?.boards, 'boards');
  channels(config?.channels, 'channels');
  const sources = config?.sources;
  if (Array.isArray(sources)) {
    for (const [i, source] of sources.entries())
      channels(asRecord(source)?.channels, `sources.${i}.channels`);
  }
  return { errors, warnings };
}
