import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHashSession, type HashAnswer } from '../../shared/verify/hash-session.ts';

const slot = () => new Uint8Array(16);

function feed(
  slots: Uint8Array[],
  index: number,
  text: string,
): { op: 'update'; slot: number; length: number } {
  const bytes = new TextEncoder().encode(text);
  slots[index]?.set(bytes);
  return { op: 'update', slot: index, length: bytes.byteLength };
}

const hex = (hash: string, ...parts: string[]) => {
  const h = createHash(hash);
  for (const part of parts) h.update(part);
  return h.digest('hex');
};

function done(answer: HashAnswer | undefined): { sha512: string; digest: string } {
  if (answer?.reply.op !== 'done') throw new Error(`expected done, got ${JSON.stringify(answer?.reply)}`);
  expect(answer.transfer).toEqual([answer.reply.digest.buffer]);
  return { sha512: answer.reply.sha512, digest: Buffer.from(answer.reply.digest).toString('hex') };
}

describe('hash session (what the hash thread runs)', () => {
  it('gives the data SHA-512 and the signed digest over data and tail in one pass', () => {
    const slots = [slot(), slot()];
    const session = createHashSession(slots);
    expect(session.handle({ op: 'begin', hash: 'sha512' })).toBeUndefined();
    expect(session.handle(feed(slots, 0, 'hello '))?.reply).toEqual({ op: 'ack' });
    expect(session.handle(feed(slots, 1, 'world'))?.reply).toEqual({ op: 'ack' });
    const result = done(session.handle({ op: 'finish', tail: [new TextEncoder().encode('!tail')] }));
    expect(result).toEqual({
      sha512: hex('sha512', 'hello world'),
      digest: hex('sha512', 'hello world!tail'),
    });
  });

  it('keeps a separate SHA-512 when the signature uses another hash', () => {
    const slots = [slot()];
    const session = createHashSession(slots);
    session.handle({ op: 'begin', hash: 'sha256' });
    session.handle(feed(slots, 0, 'abc'));
    const result = done(session.handle({ op: 'finish', tail: [new TextEncoder().encode('x')] }));
    expect(result).toEqual({ sha512: hex('sha512', 'abc'), digest: hex('sha256', 'abcx') });
  });

  it('answers every request after a bad hash name with the error, until the next begin', () => {
    const slots = [slot()];
    const session = createHashSession(slots);
    session.handle({ op: 'begin', hash: 'no-such-hash' });
    const update = session.handle(feed(slots, 0, 'a'))?.reply;
    expect(update?.op).toBe('error');
    expect(session.handle({ op: 'finish', tail: [] })?.reply).toEqual(update);
    session.handle({ op: 'begin', hash: 'sha512' });
    expect(session.handle(feed(slots, 0, 'a'))?.reply).toEqual({ op: 'ack' });
  });

  it('refuses work with no stream begun, after a reset, and for a slot it does not have', () => {
    const slots = [slot()];
    const session = createHashSession(slots);
    expect(session.handle(feed(slots, 0, 'a'))?.reply).toEqual({
      op: 'error',
      message: 'update arrived with no stream begun',
    });
    session.handle({ op: 'begin', hash: 'sha512' });
    expect(session.handle({ op: 'update', slot: 3, length: 1 })?.reply).toEqual({
      op: 'error',
      message: 'there is no slot 3',
    });
    session.handle({ op: 'begin', hash: 'sha512' });
    expect(session.handle({ op: 'reset' })).toBeUndefined();
    expect(session.handle({ op: 'finish', tail: [] })?.reply.op).toBe('error');
  });
});
