import type { S3Client } from '@aws-sdk/client-s3';
import type { CldistConfig } from '../../shared/config.ts';
import type { Ledger } from '../../shared/ledger/ledger.ts';
import type { PollReport } from '../../shared/mirror/poller.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import type { TransferTracker } from '../progress.ts';
import type { Logger } from '../runtime/log.ts';
import type { StatusModel } from '../status/model.ts';
import type { LocalFleet } from './fleet.ts';
import type { Lifecycle } from './lifecycle.ts';

export interface ServeOptions {
  config: CldistConfig;
  /** Holds the ledger, the local mirror, instance configs and the admin token; kept across restarts. */
  dataDir: string;
  host: string;
  /** 0 picks a free port (tests); the bound one is in the handle and in the `http.listening` log line. */
  port: number;
  /** false: no HTTP server at all (`cldist mirror --once` only mirrors); the handle's url is then empty. */
  http?: boolean;
  concurrency: number;
  /**
   * When the queue stand-in starts: `eager` (default) with everything else; `on-demand` on the first job
   * or event, so a run with nothing new starts neither it nor the worker pool (`mirror --once`).
   */
  queue?: 'eager' | 'on-demand';
  /** `--store s3://bucket/prefix`: overrides the config's store. Otherwise a local folder under the data dir. */
  store?: { bucket: string; prefix: string };
  /** AWS region of the clients (the stand-ins accept any); default us-east-1. */
  region?: string;
  /** The client for an S3 store; default the SDK's own chain (environment, profile, instance role). */
  s3?: S3Client;
  logger: Logger;
  tracker: TransferTracker;
  /** Notifications on the console: `json` writes one JSON line per event; default a short logger line. */
  console?: { format: 'json' | 'pretty'; writeLine: (line: string) => void };
  /** Milliseconds between polls; default `config.schedule.everyMinutes`. */
  pollEveryMs?: number;
  /** Shown on the status page. */
  demo?: boolean;
  /** Seconds between status page reloads. */
  refreshSeconds?: number;
  /** How long a shutdown waits for aborted transfers to wind down before closing the stand-ins anyway. */
  shutdownGraceMs?: number;
  /** Overrides `config.worker.minFreeDiskMiB` (`--min-free-mib`). */
  minFreeDiskMiB?: number;
  /** How often the free space of the data dir is measured; default 5 s. */
  diskCheckEveryMs?: number;
  clock?: () => Date;
  /** Where a rotated signing key is dropped; default `{dataDir}/trust/keyring.asc`. Watched, with the keyring files. */
  trustFile?: string;
  /** Seconds between the stat checks that back up the file watch of the trust; default 5. */
  trustStatSeconds?: number;
  /** `--metadata-listen`: also serve the metadata routes (and only those) on this address. */
  metadataListen?: { host: string; port: number };
  /** `--boot-listen`: also serve the network boot routes and the mirror (only those) on this address. */
  bootListen?: { host: string; port: number };
}

export interface ServeHandle {
  /** `http://host:port`. */
  url: string;
  port: number;
  adminToken: string;
  /** Where the admin token is kept, and whether this start generated it. */
  adminTokenFile: string;
  adminTokenCreated: boolean;
  /** The metadata listener's `http://host:port`, when one was asked for. */
  metadataUrl?: string;
  /** The boot listener's `http://host:port`, when one was asked for. */
  bootUrl?: string;
  store: ObjectStore;
  ledger: Ledger;
  /** The fleet: its recorder (what the Omaha endpoint writes to), its ledger and its counting pass; absent without HTTP. */
  fleet?: LocalFleet;
  /** Poll every channel now (also the start-up poll); resolves with the core's report. */
  pollNow(): Promise<PollReport>;
  /** The report of the last finished poll. */
  lastPoll(): PollReport | undefined;
  /** Whether the queue stand-in (and with it the worker pool) was started: false while nothing was sent. */
  queueStarted(): boolean;
  status(): Promise<StatusModel>;
  /**
   * Resolves when no job is queued, in flight or waiting for a retry, or when the server closes; rejects
   * while mirroring is paused for lack of disk space, which would otherwise never drain.
   */
  drain(): Promise<void>;
  /** Graceful stop: timers, intake, in-flight transfers (aborted), servers, stand-ins; idempotent. */
  close(): Promise<void>;
}

/** What every part of `startServe` is built from. */
export interface ServeContext {
  options: ServeOptions;
  config: CldistConfig;
  logger: Logger;
  clock: () => Date;
  /** Absolute. */
  dataDir: string;
  /** Stops what a part started, in reverse order. */
  lifecycle: Lifecycle;
}
