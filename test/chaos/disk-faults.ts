import { execFile } from 'node:child_process';
import { mkdir, open, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Ledger } from '../../shared/ledger/ledger.ts';
import { storeKey } from '../../shared/release/layout.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { type ChaosPlan, chaosBoard, forkRandom, randomInt } from './plan.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** `ledgerIo`: only the ledger's filesystem fills, so LevelDB fails with I/O errors; `diskFull`: the mirror's. */
export type DiskFaultKind = 'ledgerIo' | 'diskFull';

export interface PlannedDiskFault {
  kind: DiskFaultKind;
  /** Milliseconds after the first release is published. */
  atMs: number;
  /** How long the filesystem stays full. */
  ms: number;
}

/**
 * Drawn from the seed on its own fork, so adding disk faults leaves the rest of a seed's schedule (and its
 * digest) as it was.
 */
export function planDiskFaults(
  seed: number,
  releaseCount: number,
  kinds: readonly DiskFaultKind[] = ['ledgerIo', 'diskFull'],
): PlannedDiskFault[] {
  const random = forkRandom(seed, 'disk');
  // Within the publishing phase, while the poller claims releases and the workers write.
  const span = releaseCount * 750;
  const faults: PlannedDiskFault[] = [];
  for (const kind of ['ledgerIo', 'diskFull'] as const) {
    const count = Math.max(1, Math.round(releaseCount / 4));
    for (let i = 0; i < count; i++) {
      const fault: PlannedDiskFault = {
        kind,
        atMs: randomInt(random, 0, span),
        ms: randomInt(random, 1000, 3000),
      };
      if (kinds.includes(kind)) faults.push(fault);
    }
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

interface Disk {
  path: string;
  ballasts: number;
}

async function mount(path: string, bytes: number): Promise<Disk> {
  await mkdir(path, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', path]);
  return { path, ballasts: 0 };
}

/** Fill the filesystem to the last block; returns the file to delete to free it again. */
async function fill(disk: Disk): Promise<string> {
  const file = join(disk.path, `ballast-${disk.ballasts++}`);
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(MiB, 1);
  try {
    for (let i = 0; i < 100_000; i++) {
      const { bytesWritten } = await handle.write(chunk);
      if (bytesWritten < chunk.byteLength) break;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
  return file;
}

/**
 * tmpfs hands out whole pages, so a full filesystem still takes small appends into the page LevelDB's log
 * is filling: a quiet ledger can ride out a short fault unharmed. The fault therefore lasts until the
 * ledger has failed a write (writing through `touch` to get there), then its planned time on top.
 */
export interface LedgerProbe {
  /** How often the ledger's thread has failed so far. */
  failures(): number;
  /** One small write to the ledger; failures are expected and ignored. */
  touch(): Promise<void>;
}

/** Touch the ledger until it fails (at most 20 s: a ledger that never fails shows as 0 hits). */
async function untilLedgerFails(probe: LedgerProbe): Promise<void> {
  const before = probe.failures();
  for (let i = 0; i < 100 && probe.failures() === before; i++) {
    await probe.touch();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface DiskFaults {
  /** Where the ledger and the local mirror go: each on its own small tmpfs. */
  ledgerPath: string;
  mirrorPath: string;
  planned: PlannedDiskFault[];
  applied: Record<DiskFaultKind, number>;
  /** Fire the planned faults relative to `start`; resolves when the last one has cleared. */
  run(start: number, log: (line: string) => void, ledger: LedgerProbe): Promise<void>;
  unmount(): Promise<void>;
}

/**
 * Two small tmpfs mounts under the run's folder, one for the ledger and one for the mirror, so each fault
 * is a real ENOSPC from the kernel. Mounting needs root (CI runs as root); where it is refused the reason
 * comes back and the run goes on without these faults.
 */
export async function prepareDiskFaults(
  folder: string,
  plan: ChaosPlan,
  store: 'local' | 's3',
): Promise<DiskFaults | { unavailable: string }> {
  const disks: Disk[] = [];
  const unmount = async () => {
    for (const disk of disks.splice(0)) {
      await run('umount', ['-l', disk.path]).catch(() => undefined);
      await rmdir(disk.path).catch(() => undefined);
    }
  };
  try {
    const ledgerDisk = await mount(join(folder, 'ledger-disk'), 64 * MiB);
    disks.push(ledgerDisk);
    const largest = Math.max(...plan.releases.flatMap((r) => r.artifacts.map((a) => a.size ?? 0)));
    const mirror = await mount(join(folder, 'mirror-disk'), plan.releases.length * 8 * MiB + 4 * largest);
    disks.push(mirror);
    // An S3 mirror (on fauxqs, in memory) has no disk to fill: only the ledger's then.
    const planned = planDiskFaults(
      plan.seed,
      plan.releases.length,
      store === 'local' ? ['ledgerIo', 'diskFull'] : ['ledgerIo'],
    );
    const applied: Record<DiskFaultKind, number> = { ledgerIo: 0, diskFull: 0 };
    return {
      ledgerPath: join(ledgerDisk.path, 'ledger'),
      mirrorPath: join(mirror.path, 'mirror'),
      planned,
      applied,
      async run(start, log, probe) {
        for (const fault of planned) {
          const wait = start + fault.atMs - Date.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          const disk = fault.kind === 'ledgerIo' ? ledgerDisk : mirror;
          const ballast = await fill(disk);
          applied[fault.kind]++;
          log(`${fault.kind}: ${disk.path} full`);
          if (fault.kind === 'ledgerIo') await untilLedgerFails(probe);
          await new Promise((resolve) => setTimeout(resolve, fault.ms));
          await unlink(ballast);
          log(`${fault.kind} over: ${disk.path} has room again`);
        }
      },
      unmount,
    };
  } catch (error) {
    await unmount();
    return { unavailable: `cannot mount a tmpfs here: ${(error as Error).message.split('\n')[0]}` };
  }
}

/**
 * Nothing lost: every artifact the ledger calls verified is in the mirror with the size it recorded, and
 * every finalized release has its `release.json`, whatever filled up along the way.
 */
export async function findLostArtifacts(
  plan: ChaosPlan,
  ledger: Ledger,
  store: ObjectStore,
): Promise<string[]> {
  const lost: string[] = [];
  for (const release of plan.releases) {
    const ref = { source: 'flatcar', channel: release.channel, board: chaosBoard, version: release.version };
    const detail = await ledger.getRelease(ref);
    if (detail === undefined) continue;
    for (const artifact of detail.artifactStates) {
      if (artifact.state !== 'verified') continue;
      const key = storeKey('', release.channel, chaosBoard, release.version, artifact.artifact);
      const stored = await store.head(key);
      if (stored === undefined) lost.push(`${key}: verified in the ledger but not in the mirror`);
      else if (artifact.size !== undefined && stored.size !== artifact.size) {
        lost.push(`${key}: ${stored.size} bytes in the mirror, the ledger recorded ${artifact.size}`);
      }
    }
    if (detail.finalizedAt !== undefined) {
      const manifest = storeKey('', release.channel, chaosBoard, release.version, 'release.json');
      if ((await store.head(manifest)) === undefined) lost.push(`${manifest}: finalized but missing`);
    }
  }
  return lost;
}
