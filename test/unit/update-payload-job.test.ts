import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../local/runtime/log.ts';
import { parseConfig, type UpdateConfig } from '../../shared/config.ts';
import { runMirrorJob } from '../../shared/mirror/job.ts';
import { updatePayloadUrl } from '../../shared/update/origin.ts';
import { MAIN_UPDATE_PAYLOAD } from '../../shared/update/payload-record.ts';
import { depsWithLedgerDown } from '../support/mirror-deps.ts';

const channels = [{ name: 'stable', baseUrl: 'http://127.0.0.1:9/{channel}' }];
const config = parseConfig({
  channels,
  update: { origin: 'http://127.0.0.1:9/update/{board}/{version}', payloads: ['oem-qemu.gz'] },
});
const configured = config.update;
if (configured === undefined) throw new Error('no update section');
const update: UpdateConfig = configured;

function body(fields: Record<string, unknown> = {}): string {
  const name = typeof fields.name === 'string' ? fields.name : MAIN_UPDATE_PAYLOAD;
  return JSON.stringify({
    v: 1,
    kind: 'update-payload',
    source: 'flatcar',
    channel: 'stable',
    board: 'amd64-usr',
    version: '4081.2.0',
    name,
    url: updatePayloadUrl(update, 'amd64-usr', '4081.2.0', name),
    ...fields,
  });
}

describe('update payload jobs under the one job policy (runMirrorJob)', () => {
  it('places the payload beside its release at the origin, with the folder slash added', () => {
    expect(update.origin).toBe('http://127.0.0.1:9/update/{board}/{version}/');
    expect(updatePayloadUrl(update, 'arm64-usr', '1.2.3', 'oem-qemu.gz')).toBe(
      'http://127.0.0.1:9/update/arm64-usr/1.2.3/oem-qemu.gz',
    );
  });

  it('takes a well-formed job for a configured payload to the ledger (here down: a retry)', async () => {
    const records: LogRecord[] = [];
    for (const name of [MAIN_UPDATE_PAYLOAD, 'oem-qemu.gz']) {
      const result = await runMirrorJob(body({ name }), { deps: depsWithLedgerDown(records), config });
      expect(result).toMatchObject({
        disposition: 'retry',
        outcome: 'failed',
        facts: { code: 'ledger-unavailable' },
      });
    }
  });

  it('refuses forged, stale and malformed jobs before the ledger, naming why', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'http://127.0.0.1:9/elsewhere/flatcar_production_update.gz' }, 'unexpected-url'],
      [{ name: 'oem-azure.gz' }, 'unknown-payload'],
      [{ board: 'arm64-usr' }, 'unknown-board'],
      [{ channel: 'nightly' }, 'unknown-channel'],
      [{ source: 'coreos' }, 'unknown-channel'],
      [{ source: undefined }, 'malformed-message'],
      [{ version: '4081..2' }, 'malformed-message'],
      [{ extra: true }, 'malformed-message'],
    ];
    for (const [fields, code] of cases) {
      const records: LogRecord[] = [];
      const result = await runMirrorJob(body(fields), { deps: depsWithLedgerDown(records), config });
      expect(result, JSON.stringify(fields)).toMatchObject({
        disposition: 'ack',
        outcome: 'rejected',
        facts: { code },
      });
      expect(records.map((r) => r.event)).toEqual(['worker.job_rejected']);
    }
    const unconfigured = parseConfig({ channels });
    const result = await runMirrorJob(body(), { deps: depsWithLedgerDown([]), config: unconfigured });
    expect(result).toMatchObject({ disposition: 'ack', facts: { code: 'update-not-configured' } });
  });
});
