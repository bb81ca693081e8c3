import { Worker } from 'node:worker_threads';

/**
 * The verifier already hashes every byte with SHA-512 on the main thread (inside openpgp.js, out of reach),
 * and release.json needs the plain SHA-512 of the file as well. Doing the second hash on a worker thread
 * keeps it off the critical path on a multi-core machine instead of halving the throughput.
 */
export interface StreamHash {
  /** Resolves once the bytes are copied into a free slot: bounded memory whatever the file size. */
  update(chunk: Uint8Array): Promise<void>;
  digest(): Promise<string>;
  close(): Promise<void>;
}

const source = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha512');
const { buffer, slotSize } = workerData;
parentPort.on('message', (message) => {
  if (message === 'end') {
    parentPort.postMessage({ digest: hash.digest('hex') });
    return;
  }
  hash.update(new Uint8Array(buffer, message[0] * slotSize, message[1]));
  parentPort.postMessage('ack');
});
`;

/**
 * Chunks travel through a ring of shared-memory slots (a copy, no structured clone), and the worker
 * acknowledges each slot once hashed, so a slow hash holds the stream back instead of queueing memory.
 */
export function offThreadSha512(slots = 4, slotSize = 1024 * 1024): StreamHash {
  const buffer = new SharedArrayBuffer(slots * slotSize);
  const worker = new Worker(source, { eval: true, workerData: { buffer, slotSize } });
  let sent = 0;
  let acked = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let finish: ((digest: string) => void) | undefined;
  let fail: ((error: Error) => void) | undefined;
  worker.on('message', (message: 'ack' | { digest: string }) => {
    if (message === 'ack') {
      acked++;
      wake?.();
      wake = undefined;
    } else {
      finish?.(message.digest);
    }
  });
  worker.on('error', (error) => {
    failure = error;
    wake?.();
    fail?.(error);
  });

  async function send(piece: Uint8Array): Promise<void> {
    while (sent - acked >= slots && failure === undefined) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (failure !== undefined) throw failure;
    const slot = sent % slots;
    new Uint8Array(buffer, slot * slotSize, piece.byteLength).set(piece);
    worker.postMessage([slot, piece.byteLength]);
    sent++;
  }

  return {
    async update(chunk) {
      for (let offset = 0; offset < chunk.byteLength; offset += slotSize) {
        await send(chunk.subarray(offset, Math.min(chunk.byteLength, offset + slotSize)));
      }
    },
    digest() {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<string>((resolve, reject) => {
        finish = resolve;
        fail = reject;
        worker.postMessage('end');
      });
    },
    async close() {
      await worker.terminate();
    },
  };
}
