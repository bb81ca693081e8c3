import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { planInstanceWrites, runInstanceWrites } from '../chaos/instance-writes.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';

const clients = emulatorClients();

async function table(): Promise<string> {
  const name = await freshTable(clients);
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: name },
  );
  return name;
}

/**
 * The write path as it was: content-addressed body keys, unconditional record writes, and the replaced
 * body deleted in the racing path.
 */
function racingDeletes(inner: InstanceRepository, bodies: ObjectStore): InstanceRepository {
  return {
    ...inner,
    async put(record) {
      const contentKey = record.bodyKey.replace(/\.[0-9a-f]{16}\./, '.');
      const body = await bodies.get(record.bodyKey);
      if (body !== undefined) await bodies.put(contentKey, body);
      // Last writer wins: on a conflict, read again and write anyway.
      for (let attempt = 0; ; attempt++) {
        const current = await inner.get(record.id);
        try {
          await inner.put({ ...record, bodyKey: contentKey }, current);
        } catch (error) {
          if (attempt < 5) continue;
          throw error;
        }
        if (current !== undefined && current.bodyKey !== contentKey) await bodies.delete(current.bodyKey);
        return;
      }
    },
  };
}

describe('chaos fault: concurrent admin writes to the same ids', () => {
  it('draws 2 to 4 writers per round from the seed, the same for the same seed', () => {
    const plan = planInstanceWrites(3, 20);
    expect(planInstanceWrites(3, 20)).toEqual(plan);
    expect(Math.min(...plan.writers)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...plan.writers)).toBeLessThanOrEqual(4);
  });

  it('keeps every id fetchable with its last acknowledged token', { timeout: 60_000 }, async () => {
    const result = await runInstanceWrites(clients.doc, await table(), planInstanceWrites(1));
    expect(result.invariant.violations).toEqual([]);
    expect(result.invariant.pass).toBe(true);
    expect(result.fault.applied).toBeGreaterThanOrEqual(2 * result.fault.planned);
  });

  it('fails when the write path deletes replaced bodies while racing', { timeout: 60_000 }, async () => {
    const result = await runInstanceWrites(
      clients.doc,
      await table(),
      { ids: 4, rounds: 6, writers: [4, 4, 4, 4, 4, 4] },
      racingDeletes,
    );
    expect(result.invariant.pass).toBe(false);
    expect(result.invariant.violations.join('\n')).toMatch(/answered [0-9,]*503/);
  });
});
