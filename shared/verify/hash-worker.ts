import { parentPort, workerData } from 'node:worker_threads';
import { createHashSession, type HashRequest } from './hash-session.ts';

/**
 * The hash thread's entry point: one session per thread, its slots shared with the verifier. Started by
 * `hash-thread.ts`, as `hash-worker.mjs` beside a bundle, or through `hash-worker-tsx.mjs` from sources.
 */
const port = parentPort;
if (port === null) throw new Error('hash-worker.ts runs only as a worker thread, started by hash-thread.ts');
const { slots } = workerData as { slots: SharedArrayBuffer[] };
const session = createHashSession(slots.map((buffer) => new Uint8Array(buffer)));
port.on('message', (request: HashRequest) => {
  const answer = session.handle(request);
  if (answer !== undefined) port.postMessage(answer.reply, answer.transfer);
});
