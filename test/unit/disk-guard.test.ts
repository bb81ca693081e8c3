import { describe, expect, it } from 'vitest';
import { startDiskGuard } from '../../local/runtime/disk-guard.ts';
import { createLogger, type LogRecord } from '../../local/runtime/log.ts';

const MiB = 1024 * 1024;

function setup(minFreeMiB: number) {
  let free = 1000 * MiB;
  const records: LogRecord[] = [];
  const guard = startDiskGuard({
    path: '/data',
    minFreeMiB,
    checkEveryMs: 3_600_000,
    logger: createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) }),
    measure: async () => ({ freeBytes: free, totalBytes: 2000 * MiB }),
  });
  return {
    guard,
    records,
    setFree: (mib: number) => {
      free = mib * MiB;
    },
  };
}

describe('disk guard', () => {
  it('pauses below the threshold, and resumes only with a quarter more room', async () => {
    const { guard, records, setFree } = setup(100);
    await guard.check();
    expect(guard.paused).toBe(false);
    setFree(99);
    await guard.check();
    expect(guard.paused).toBe(true);
    expect(guard.state()).toMatchObject({ paused: true, freeMiB: 99, minFreeMiB: 100 });
    setFree(110);
    await guard.check();
    expect(guard.paused).toBe(true);
    setFree(125);
    await guard.check();
    expect(guard.paused).toBe(false);
    expect(records.map((r) => r.event)).toEqual(['mirror.paused_low_disk', 'mirror.resumed']);
    expect(records[0]).toMatchObject({ level: 'warn', freeMiB: 99, resumesAtMiB: 125 });
    guard.stop();
  });

  it('holds waiters while paused and lets them go on resume or abort', async () => {
    const { guard, setFree } = setup(100);
    setFree(10);
    await guard.check();
    let released = false;
    const waiting = guard.whenRoomy(new AbortController().signal).then(() => {
      released = true;
    });
    const aborter = new AbortController();
    const aborted = guard.whenRoomy(aborter.signal);
    aborter.abort();
    await aborted;
    await guard.check();
    expect(released).toBe(false);
    setFree(500);
    await guard.check();
    await waiting;
    expect(released).toBe(true);
    await guard.whenRoomy(new AbortController().signal);
    guard.stop();
  });

  it('is off at 0', async () => {
    const { guard, setFree } = setup(0);
    setFree(0);
    await guard.check();
    expect(guard.paused).toBe(false);
    guard.stop();
  });

  it('logs a failed measurement once and keeps its state', async () => {
    const records: LogRecord[] = [];
    const guard = startDiskGuard({
      path: '/nowhere',
      minFreeMiB: 10,
      checkEveryMs: 3_600_000,
      logger: createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) }),
      measure: async () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      },
    });
    await guard.check();
    await guard.check();
    expect(records.map((r) => r.event)).toEqual(['disk.check_failed']);
    expect(guard.paused).toBe(false);
    guard.stop();
  });
});
