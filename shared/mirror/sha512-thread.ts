import { Worker } from 'node:worker_threads';

/**
 * The verifier already hashes every byte with SHA-512 on the main thread (inside openpgp.js, out of reach),
 * and release.json needs the plain SHA-512 of the file as well. Doing the second hash on a worker thread
 * keeps it off the critical path on a multi-core machine instead of halving the throughput.
 */
export interface StreamHash {
  /** Resolves at once unless `maxQueued` chunks are still waiting: bounded memory whatever the file size. */
  update(chunk: Uint8Array): Promise<void>;
  digest(): Promise<string>;
  close(): Promise<void>;
}

const source = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha512');
parentPort.on('message', (message) => {
  if (message === 'end') parentPort.postMessage({ digest: hash.digest('hex') });
  else { hash.update(message); parentPort.postMessage('ack'); }
});
`;

export function offThreadSha512(maxQueued = 4): StreamHash {
  const worker = new Worker(source, { eval: true });
  let queued = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let finish: ((digest: string) => void) | undefined;
  let fail: ((error: Error) => void) | undefined;
  worker.on('message', (message: 'ack' | { digest: string }) => {
    if (message === 'ack') {
      queued--;
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
  return {
    async update(chunk) {
      if (failure !== undefined) throw failure;
      worker.postMessage(chunk);
      queued++;
      while (queued >= maxQueued && failure === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      if (failure !== undefined) throw failure;
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
