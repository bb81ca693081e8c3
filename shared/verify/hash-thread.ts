import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { HashReply, HashRequest } from './hash-session.ts';

/**
 * SHA-512 is slower than the socket and the disk, so on the main thread it sets the mirror's speed (`npm
 * run bench:transfer` measures the whole path). On its own thread it overlaps with receiving and storing.
 * What the thread does is `hash-session.ts`; `hash-worker.ts` is its entry point.
 *
 * From sources (`.ts`, under tsx or vitest) the thread starts through `hash-worker-tsx.mjs`, which loads
 * the TypeScript entry; in a bundle (the CLI's, a Lambda's) this module's URL ends in `.mjs`/`.js` and the
 * thread starts `hash-worker.mjs`, which the same build writes beside the bundle.
 */
const fromSources = import.meta.url.endsWith('.ts');
const workerEntry = new URL(fromSources ? './hash-worker-tsx.mjs' : './hash-worker.mjs', import.meta.url);

/**
 * Each thread owns a few shared 1 MiB slots: a chunk is copied into a free slot and hashed in place, so
 * nothing is allocated per chunk and a slow thread holds back the reader instead of piling up garbage.
 */
const slotCount = 4;
const slotBytes = 1 << 20;

export interface StreamDigests {
  /** SHA-512 of the data alone, for release.json. */
  sha512: string;
  /** The stream's hash over data ‖ tail, the digest an OpenPGP v4 signature signs. */
  digest: Uint8Array;
}

/** One stream's view of a hash thread: feed it, then finish or cancel it exactly once. */
export interface StreamHasher {
  /** Resolves once the thread has room for more; the chunk is copied, so the caller may reuse it. */
  update(chunk: Uint8Array): Promise<void>;
  finish(tail: readonly Uint8Array[]): Promise<StreamDigests>;
  /** Gives the thread back without a digest, e.g. when the source failed. */
  cancel(): void;
}

class HashThread {
  private readonly worker: Worker;
  readonly slots: Uint8Array[];
  private waiting: Array<{ resolve: (reply: HashReply) => void; reject: (error: Error) => void }> = [];
  broken: Error | undefined;

  constructor() {
    const buffers = Array.from({ length: slotCount }, () => new SharedArrayBuffer(slotBytes));
    this.slots = buffers.map((buffer) => new Uint8Array(buffer));
    this.worker = new Worker(workerEntry, { workerData: { slots: buffers } });
    this.worker.unref();
    this.worker.on('message', (reply: HashReply) => this.waiting.shift()?.resolve(reply));
    const fail = (error: Error) => {
      this.broken = error;
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    };
    this.worker.on('error', (error) => fail(new Error('the hash thread failed', { cause: error })));
    this.worker.on('exit', (code) => fail(new Error(`the hash thread exited (code ${code})`)));
  }

  /** Sends a message whose reply arrives in order after the replies already awaited. */
  request(message: HashRequest): Promise<HashReply> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const reply = new Promise<HashReply>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.worker.postMessage(message);
    return reply;
  }

  send(message: HashRequest): void {
    if (this.broken === undefined) this.worker.postMessage(message);
  }

  lend(): void {
    this.worker.ref();
  }

  giveBack(): void {
    this.worker.unref();
  }

  terminate(): void {
    void this.worker.terminate();
  }
}

const idle: HashThread[] = [];
/** Idle threads kept for the next stream; more concurrent streams than this start (and end) their own. */
const maxIdle = Math.max(1, Math.min(4, availableParallelism()));

let lent = 0;

/** Threads lent to streams and idle in the pool; a stream that ended but was never given back shows here. */
export function hashThreadCounts(): { lent: number; idle: number } {
  return { lent, idle: idle.length };
}

function acquire(): HashThread {
  lent += 1;
  for (let thread = idle.pop(); thread !== undefined; thread = idle.pop()) {
    if (thread.broken === undefined) {
      thread.lend();
      return thread;
    }
  }
  const thread = new HashThread();
  thread.lend();
  return thread;
}

function release(thread: HashThread): void {
  lent -= 1;
  thread.giveBack();
  if (thread.broken === undefined && idle.length < maxIdle) {
    idle.push(thread);
  } else {
    thread.terminate();
  }
}

function unexpected(reply: HashReply): Error {
  return new Error(
    reply.op === 'error'
      ? `hashing failed: ${reply.message}`
      : `the hash thread answered ${reply.op} out of turn`,
  );
}

/** A hasher for one stream on a pooled thread; `hash` is a node:crypto name such as `sha512`. */
export function createStreamHasher(hash: string): StreamHasher {
  const thread = acquire();
  thread.send({ op: 'begin', hash });
  const free = thread.slots.map((_, index) => index);
  const pending: Array<{ slot: number; ack: Promise<HashReply> }> = [];
  let released = false;
  const done = (): void => {
    if (!released) {
      released = true;
      release(thread);
    }
  };
  const settle = async (keep: number): Promise<void> => {
    while (pending.length > keep) {
      const oldest = pending.shift() as { slot: number; ack: Promise<HashReply> };
      const reply = await oldest.ack;
      free.push(oldest.slot);
      if (reply.op !== 'ack') throw unexpected(reply);
    }
  };
  return {
    async update(chunk) {
      for (let offset = 0; offset < chunk.byteLength; offset += slotBytes) {
        if (free.length === 0) await settle(pending.length - 1);
        const slot = free.pop() as number;
        const piece = chunk.subarray(offset, offset + slotBytes);
        (thread.slots[slot] as Uint8Array).set(piece);
        const ack = thread.request({ op: 'update', slot, length: piece.byteLength });
        ack.catch(() => undefined);
        pending.push({ slot, ack });
      }
    },
    async finish(tail) {
      try {
        await settle(0);
        const reply = await thread.request({ op: 'finish', tail });
        if (reply.op !== 'done') throw unexpected(reply);
        return { sha512: reply.sha512, digest: reply.digest };
      } finally {
        done();
      }
    },
    cancel() {
      if (released) return;
      // Replies still due to this stream are matched to its own waiters (one FIFO per thread), and
      // its queued chunks are hashed into the discarded state before the next stream's `begin`.
      thread.send({ op: 'reset' });
      done();
    },
  };
}
