import { describeError } from '../errors.ts';
import type { Keyring } from '../verify/keyring.ts';
import type { TrustInput, TrustSource } from './source.ts';

/**
 * Why the trust is read again. `unknown-signer` is rate-limited (a flood of signatures by a key nobody
 * uploaded must not become a flood of reads); the others are already bounded by their callers.
 */
export type RefreshReason = 'unknown-signer' | 'stale' | 'poll' | 'watch';

export interface TrustedKeyringOptions {
  source: TrustSource;
  /** Turns the source's texts into a keyring; fails (ConfigError) for a keyring that trusts nothing. */
  build: (inputs: TrustInput[]) => Promise<Keyring>;
  clock: () => Date;
  /** Unknown signers re-read the trust at most once per this many milliseconds, together. */
  minRefreshMs: number;
  /** A keyring older than this is read again before its next use: how stale a warm function can be. */
  maxAgeMs: number;
  /** Told about a reload that failed; the previous keyring stays in force. */
  onReloadFailed?: (error: unknown, reason: RefreshReason) => void;
  /** Told about a changed trust, once per change. */
  onReloaded?: (version: string, reason: RefreshReason) => void;
}

export interface TrustSnapshot {
  keyring: Keyring;
  /** The source's version (ETag, content hash) this keyring was built from. */
  version: string;
}

export interface TrustedKeyring {
  readonly location: string;
  /** The keyring in force, read again first when it is older than `maxAgeMs`. */
  current(): Promise<TrustSnapshot>;
  /** Reads the source now (rate-limited for `unknown-signer`); resolves with the snapshot then in force. */
  refresh(reason: RefreshReason): Promise<TrustSnapshot>;
  /** The snapshot in force, without reading anything (a status page). */
  peek(): TrustSnapshot;
}

/**
 * The keyring as the trust source says it is now. Reads are single-flight: callers that arrive while one is
 * in flight share it. A failed reload keeps the previous keyring (and reports), so a bad upload cannot stop
 * releases signed by keys already trusted; only the first load fails hard.
 */
export async function loadTrustedKeyring(options: TrustedKeyringOptions): Promise<TrustedKeyring> {
  const { source, clock } = options;
  const first = await source.read(undefined);
  if (!first.changed) throw new Error(`trust source ${source.location} answered "unchanged" to a first read`);
  let snapshot: TrustSnapshot = { keyring: await options.build(first.inputs), version: first.version };
  let checkedAt = clock().getTime();
  /** Only reads for unknown signers count against their limit: a cold start or a poll does not delay one. */
  let unknownReadAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<TrustSnapshot> | undefined;

  const reload = async (reason: RefreshReason): Promise<TrustSnapshot> => {
    try {
      const read = await source.read(snapshot.version);
      checkedAt = clock().getTime();
      if (read.changed) {
        snapshot = { keyring: await options.build(read.inputs), version: read.version };
        options.onReloaded?.(read.version, reason);
      }
    } catch (error) {
      checkedAt = clock().getTime();
      options.onReloadFailed?.(error, reason);
    }
    return snapshot;
  };

  const refresh = (reason: RefreshReason): Promise<TrustSnapshot> => {
    if (inFlight !== undefined) return inFlight;
    if (reason === 'unknown-signer') {
      const now = clock().getTime();
      if (now - unknownReadAt < options.minRefreshMs) return Promise.resolve(snapshot);
      unknownReadAt = now;
    }
    inFlight = reload(reason).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  return {
    location: source.location,
    current() {
      if (clock().getTime() - checkedAt >= options.maxAgeMs) return refresh('stale');
      return Promise.resolve(snapshot);
    },
    refresh,
    peek: () => snapshot,
  };
}

/** A reload failure as a log line's attributes. */
export function reloadFailure(error: unknown, reason: RefreshReason, location: string) {
  return { location, reason, error: describeError(error) };
}
