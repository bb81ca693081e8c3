import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulators, startEmulators } from '../../local/emulators.ts';
import type { LedgerThreadEvent } from '../../local/runtime/ledger-thread.ts';
import { parseConfig } from '../../shared/config.ts';
import { TransientError } from '../../shared/errors.ts';
import { createDynamoLedger } from '../../shared/ledger/ledger.ts';
import { ledgerKey, ledgerKeySchema } from '../../shared/ledger/table.ts';
import { tempDir } from '../e2e/serve-harness.ts';
import { mountTmpfs, probeTmpfs, type Tmpfs } from '../support/tmpfs.ts';

const tmpfs = await probeTmpfs();
const config = parseConfig({}, 'test config');

describe.skipIf(!tmpfs.available)(
  `the ledger on a full disk${tmpfs.available ? '' : ` (skipped: ${tmpfs.reason})`}`,
  () => {
    let dir = '';
    let disk: Tmpfs;
    let emulators: Emulators;
    const events: LedgerThreadEvent[] = [];

    beforeAll(async () => {
      dir = await tempDir('ledger-full');
      disk = await mountTmpfs(join(dir, 'disk'), 4 * 1024 * 1024);
      emulators = await startEmulators({
        ledgerPath: join(disk.path, 'ledger'),
        config,
        maxReceives: 3,
        visibilityTimeoutSeconds: 10,
        onLedgerEvent: (event) => events.push(event),
      });
    });

    afterAll(async () => {
      await emulators?.close();
      await disk?.unmount();
      await rm(dir, { recursive: true, force: true });
    });

    it('fails writes as TransientError instead of ending the process, and recovers once space is freed', async () => {
      const { doc } = emulators.clients;
      const put = (pk: string) =>
        doc.send(
          new PutCommand({
            TableName: config.table,
            Item: { ...ledgerKey(pk, 'meta'), pad: 'x'.repeat(2000) },
          }),
        );
      await put('before');
      const ballast = await disk.fill();

      let failure: unknown;
      for (let i = 0; i < 5000 && failure === undefined; i++) {
        await put(`fill-${i}`).catch((error: unknown) => {
          failure = error;
        });
      }
      expect(failure).toBeDefined();
      expect(events.map((e) => e.event)).toContain('ledger.thread_crashed');
      expect(events.find((e) => e.event === 'ledger.thread_crashed')).toMatchObject({
        code: 'LEVEL_IO_ERROR',
      });
      expect(emulators.ledger.crashes).toBeGreaterThan(0);

      const ledger = createDynamoLedger(doc, config.table);
      const viaLedger = await ledger
        .claimRelease({ source: 'flatcar', channel: 'stable', board: 'amd64-usr', version: '4081.2.0' }, [
          {
            name: 'a',
            required: true,
            url: 'http://127.0.0.1:9/a',
            signatureUrl: 'http://127.0.0.1:9/a.sig',
          },
        ])
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(viaLedger).toBeInstanceOf(TransientError);

      await unlink(ballast.path);
      const deadline = Date.now() + 30_000;
      let written = false;
      while (!written && Date.now() < deadline) {
        await emulators.ledger.ready();
        written = await put('after').then(
          () => true,
          () => false,
        );
      }
      expect(written).toBe(true);
      const kept = await doc.send(
        new GetCommand({ TableName: config.table, Key: ledgerKey('before', 'meta') }),
      );
      expect(kept.Item?.[ledgerKeySchema.partitionKey]).toBe('before');
      expect(events.map((e) => e.event)).toContain('ledger.thread_restarted');
    });
  },
);
