import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ledgerCallsOver } from '../../local/runtime/ledger-calls.ts';
import { TransientError } from '../../shared/errors.ts';
import { ledgerCall } from '../../shared/instances/dynamo-support.ts';

/**
 * A thread that answers GetItem messages as the ledger thread does: key `found` with an item, `refused`
 * with a validation failure, `silent` never, and `exit` by ending the thread.
 */
const source = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.op !== 'get') return;
  if (m.key.pk === 'found') parentPort.postMessage({ op: 'item', id: m.id, item: { pk: 'found', n: 1, b: new Uint8Array([1]) } });
  else if (m.key.pk === 'absent') parentPort.postMessage({ op: 'item', id: m.id });
  else if (m.key.pk === 'refused') parentPort.postMessage({ op: 'item', id: m.id, error: { name: 'ValidationException', message: 'bad key', status: 400 } });
  else if (m.key.pk === 'exit') process.exit(0);
});
`;

const workers: Worker[] = [];
function thread(): Worker {
  const worker = new Worker(source, { eval: true });
  workers.push(worker);
  return worker;
}

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.terminate()));
});

describe('GetItem calls to the ledger thread', () => {
  it('matches each answer to its call, concurrent calls included', async () => {
    const reads = ledgerCallsOver(thread());
    const [found, absent] = await Promise.all([
      reads.read('t', { pk: 'found' }),
      reads.read('t', { pk: 'absent' }),
    ]);
    expect(found).toEqual({ pk: 'found', n: 1, b: new Uint8Array([1]) });
    expect(absent).toBeUndefined();
  });

  it('fails a refused read as the SDK would: named, with its status, not retried', async () => {
    const reads = ledgerCallsOver(thread());
    const error = await reads.read('t', { pk: 'refused' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    const mapped = await ledgerCall('get', () => reads.read('t', { pk: 'refused' })).catch((e: unknown) => e);
    expect(mapped).not.toBeInstanceOf(TransientError);
  });

  it('fails the calls waiting on a thread that ends, and later ones, as retryable', async () => {
    const reads = ledgerCallsOver(thread());
    const waiting = ledgerCall('get', () => reads.read('t', { pk: 'silent' }));
    const ending = ledgerCall('get', () => reads.read('t', { pk: 'exit' }));
    await expect(waiting).rejects.toBeInstanceOf(TransientError);
    await expect(ending).rejects.toBeInstanceOf(TransientError);
    await expect(ledgerCall('get', () => reads.read('t', { pk: 'found' }))).rejects.toBeInstanceOf(
      TransientError,
    );
  });
});
