import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import { sweepConfigBodies } from '../../shared/instances/body-sweep.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { forkRandom, type Random } from './plan.ts';

/** A fault plan of its own, drawn from the run's seed: how many ids, rounds and writers per round. */
export interface InstanceWritePlan {
  ids: number;
  rounds: number;
  /** Concurrent PUTs per id and round, 2 to 4. */
  writers: number[];
}

/** A generator of its own, seeded apart from the mirror's so this fault does not shift their schedule. */
function random(seed: number): Random {
  return forkRandom(seed, 'instance-writes');
}

export function planInstanceWrites(seed: number, rounds = 6, ids = 4): InstanceWritePlan {
  const next = random(seed);
  return { ids, rounds, writers: Array.from({ length: rounds }, () => 2 + Math.floor(next() * 3)) };
}

export interface InstanceWriteResult {
  invariant: { name: string; pass: boolean; detail: string; violations: string[] };
  fault: { planned: number; applied: number };
}

const adminToken = 'chaos-admin-token';
const ignitionOf = (label: string) => ({
  ignition: {
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: `data:,${label}` } }] },
  },
});

/**
 * Concurrent admin writes to the same ids, through the API app over the real ledger (dynalite) and a
 * local config store with the single-machine record cache and id index. After every round, and again
 * after a body sweep with no grace period, every id must be fetchable with the token of its last
 * acknowledged PUT, serving that PUT's body; every other acknowledged token must get 404, and a PUT may
 * only answer 200, 201 or 409.
 */
export async function runInstanceWrites(
  doc: DynamoDBDocumentClient,
  table: string,
  plan: InstanceWritePlan,
  /** Swap the repository for a broken one, to show that the invariant catches a broken write path. */
  wrap?: (instances: InstanceRepository, bodies: ObjectStore) => InstanceRepository,
): Promise<InstanceWriteResult> {
  const folder = await mkdtemp(join(tmpdir(), 'cldist-chaos-configs-'));
  const ledger = createDynamoInstanceRepository(doc, { table, flushIntervalMs: 50 });
  const bodies = createLocalStore(folder);
  const cached = withRecordCache(ledger, { index: await loadIdIndex(ledger) });
  const instances = wrap?.(cached, bodies) ?? cached;
  const clock = () => new Date();
  const app = createApiApp(
    { instances, bodies, clock, adminAuth: { kind: 'bearer', token: adminToken } },
    // Every body in the config store: the write-then-point order and the sweep are what races can break.
    parseConfig({ instances: { inlineBodyMaxBytes: 0 } }),
  );
  const violations: string[] = [];
  const winners = new Map<string, { token: string; label: string }>();
  let writes = 0;
  const put = async (id: string, label: string) => {
    writes++;
    const response = await app.request(`/v1/instances/${id}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${adminToken}` },
      body: JSON.stringify(ignitionOf(label)),
    });
    const answer = (await response.json()) as { token?: string };
    return { status: response.status, token: answer.token ?? '', label };
  };
  const fetchWith = async (id: string, token: string) => {
    const response = await app.request(`/v1/instances/${id}/ignition`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    return { status: response.status, text: await response.text() };
  };
  /** Of the PUTs a round acknowledged, exactly one token must work (the last to commit), serving its body. */
  const settle = async (id: string, acknowledged: { token: string; label: string }[], when: string) => {
    const fetched = await Promise.all(acknowledged.map((a) => fetchWith(id, a.token)));
    const working = acknowledged.filter((_, i) => fetched[i]?.status === 200);
    const others = fetched.filter((f) => f.status !== 200).map((f) => f.status);
    if (working.length !== 1 || others.some((status) => status !== 404)) {
      violations.push(`${when}: ${id} answered ${fetched.map((f) => f.status).join(',')} to its tokens`);
    }
    const [winner] = working;
    if (winner === undefined) return;
    if (!(fetched[acknowledged.indexOf(winner)]?.text ?? '').includes(`data:,${winner.label}`)) {
      violations.push(`${when}: ${id} serves another body than its last acknowledged PUT sent`);
    }
    winners.set(id, winner);
  };
  try {
    for (let round = 0; round < plan.rounds; round++) {
      await Promise.all(
        Array.from({ length: plan.ids }, async (_, n) => {
          const id = `chaos-write-${n}`;
          // Two bodies, alternating, as a client retrying a PUT sends: the case where writes share content.
          const labels = Array.from({ length: plan.writers[round] ?? 2 }, (_, w) =>
            (round + w) % 2 === 0 ? 'x' : 'y',
          );
          const answers = await Promise.all(labels.map((label) => put(id, label)));
          for (const a of answers.filter((a) => ![200, 201, 409].includes(a.status))) {
            violations.push(`round ${round}: a PUT of ${id} answered ${a.status}`);
          }
          const won = answers.filter((a) => a.status === 200 || a.status === 201);
          await settle(id, won, `round ${round}`);
        }),
      );
    }
    await sweepConfigBodies({ instances, bodies, clock }, { graceMs: -1000 });
    for (const [id, winner] of winners) await settle(id, [winner], 'after the body sweep');
    const left = await bodies.list('instances/');
    if (left.length !== winners.size) {
      violations.push(`${left.length} bodies left after the sweep for ${winners.size} instances`);
    }
  } finally {
    await instances.close().catch(() => undefined);
    await rm(folder, { recursive: true, force: true });
  }
  return {
    invariant: {
      name: 'every id stays fetchable with its last acknowledged token under concurrent admin writes',
      pass: violations.length === 0,
      detail: `${writes} PUTs to ${plan.ids} ids in ${plan.rounds} rounds of 2-4 writers`,
      violations,
    },
    fault: { planned: plan.rounds * plan.ids, applied: writes },
  };
}
