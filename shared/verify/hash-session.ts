import { createHash, type Hash } from 'node:crypto';

/** What the verifier asks of a hash thread; answers come back in the order the requests went out. */
export type HashRequest =
  | { op: 'begin'; hash: string }
  | { op: 'reset' }
  | { op: 'update'; slot: number; length: number }
  | { op: 'finish'; tail: readonly Uint8Array[] };

export type HashReply =
  | { op: 'ack' }
  | { op: 'done'; sha512: string; digest: Uint8Array }
  | { op: 'error'; message: string };

/** A reply and the buffers to transfer with it rather than copy. */
export interface HashAnswer {
  reply: HashReply;
  transfer: ArrayBuffer[];
}

export interface HashSession {
  /** The answer to `request`, or undefined for requests that get none (`begin`, `reset`). */
  handle(request: HashRequest): HashAnswer | undefined;
}

const answer = (reply: HashReply, transfer: ArrayBuffer[] = []): HashAnswer => ({ reply, transfer });

/**
 * The state a hash thread keeps for the stream it is lent to: one hash state, fed from `slots` (memory the
 * thread shares with the verifier, so a chunk is never copied through a message). `tail` bytes are hashed
 * after the plain digest is taken, which is how one pass gives both the file's SHA-512 and the OpenPGP v4
 * signed digest. A failure is kept and answered to every later request of the stream, so the verifier
 * learns of it at its next step whatever that is.
 *
 * Plain code with no thread in it, so the type checker, the linter, the tests and coverage all see it;
 * `hash-worker.ts` only connects it to a worker's message port.
 */
export function createHashSession(slots: readonly Uint8Array[]): HashSession {
  let signed: Hash | undefined;
  let plain: Hash | undefined;
  let failure: string | undefined;
  const fail = (error: unknown): HashAnswer => {
    signed = undefined;
    plain = undefined;
    failure = error instanceof Error ? error.message : String(error);
    return answer({ op: 'error', message: failure });
  };

  return {
    handle(request) {
      if (request.op === 'begin') {
        failure = undefined;
        try {
          signed = createHash(request.hash);
          plain = request.hash === 'sha512' ? undefined : createHash('sha512');
        } catch (error) {
          fail(error);
        }
        return undefined;
      }
      if (request.op === 'reset') {
        signed = undefined;
        plain = undefined;
        return undefined;
      }
      if (failure !== undefined) return answer({ op: 'error', message: failure });
      try {
        if (signed === undefined) throw new Error(`${request.op} arrived with no stream begun`);
        if (request.op === 'update') {
          const slot = slots[request.slot];
          if (slot === undefined) throw new Error(`there is no slot ${request.slot}`);
          const chunk = slot.subarray(0, request.length);
          signed.update(chunk);
          plain?.update(chunk);
          return answer({ op: 'ack' });
        }
        const sha512 = (plain ?? signed.copy()).digest('hex');
        for (const part of request.tail) signed.update(part);
        const digest = new Uint8Array(signed.digest());
        signed = undefined;
        plain = undefined;
        return answer({ op: 'done', sha512, digest }, [digest.buffer]);
      } catch (error) {
        return fail(error);
      }
    },
  };
}
