import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimOrigin } from '../../local/sim-origin/sim-origin.ts';
import { emulatorClients, freshBucket } from '../support/emulators.ts';
import {
  adminHeaders,
  bigArtifact,
  board,
  MiB,
  publish,
  serveFor,
  simConfig,
  tempDir,
  waitFor,
} from './serve-harness.ts';

describe('cldist serve --store s3://bucket/prefix (fauxqs S3)', () => {
  const clients = emulatorClients();
  let dir = '';

  beforeAll(async () => {
    dir = await tempDir('serve-s3');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('mirrors into the bucket under the prefix, serves it with ranges, and keeps nothing in the data dir', async () => {
    const sim = await startSimOrigin();
    const bucket = await freshBucket(clients, 'mirror');
    const dataDir = join(dir, 'data');
    try {
      await publish(sim, 'stable', '4081.2.0');
      const config = await simConfig(sim, dir, ['stable']);
      const started = await serveFor(config, dataDir, {
        store: { bucket, prefix: 'flatcar/' },
        s3: clients.s3,
      });
      try {
        await waitFor(async () => {
          const res = await fetch(`${started.handle.url}/v1/status`, {
            headers: adminHeaders(started.handle),
          });
          const status = (await res.json()) as { channels: Array<{ currentMirrored?: string }> };
          return status.channels[0]?.currentMirrored === '4081.2.0';
        }, 'release mirrored into S3');
        const head = await clients.s3.send(
          new HeadObjectCommand({ Bucket: bucket, Key: `flatcar/stable/${board}/4081.2.0/${bigArtifact}` }),
        );
        expect(head.ContentLength).toBe(3 * MiB + 17);
        const part = await fetch(`${started.handle.url}/mirror/stable/${board}/4081.2.0/${bigArtifact}`, {
          headers: { Range: 'bytes=0-99' },
        });
        expect(part.status).toBe(206);
        expect(part.headers.get('content-range')).toBe(`bytes 0-99/${3 * MiB + 17}`);
        const upstream = await fetch(`${sim.url}/stable/${board}/4081.2.0/${bigArtifact}`, {
          headers: { Range: 'bytes=0-99' },
        });
        expect(Buffer.from(await part.arrayBuffer())).toEqual(Buffer.from(await upstream.arrayBuffer()));
        expect(existsSync(join(dataDir, 'mirror'))).toBe(false);
      } finally {
        await started.handle.close();
      }
    } finally {
      await sim.close();
    }
  });
});
