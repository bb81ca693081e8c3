import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReleaseMirrored, UnusableEventError } from '../../examples/import-openstack/importer.ts';
import { eventsDocPath } from '../../local/events-doc.ts';
import { PermanentError } from '../../shared/errors.ts';
import { parseEvent } from '../../shared/events.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

afterAll(() => reportTallies('events'));

/** The documented examples: real events, so mutations of them are near misses a subscriber can meet. */
let examples: Record<string, unknown>[] = [];

beforeAll(async () => {
  const doc = await readFile(eventsDocPath, 'utf8');
  examples = [...doc.matchAll(/<!-- example: [a-z._]+ -->\n```json\n([\s\S]*?)\n```/g)].map(
    (match) => JSON.parse(match[1] ?? 'null') as Record<string, unknown>,
  );
  expect(examples.length).toBeGreaterThanOrEqual(4);
});

function expectRefused(run: () => unknown, code: string): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).code).toBe(code);
    return;
  }
  throw new Error('accepted');
}

describe('bad-input corpus: events (parseEvent, and the reference subscriber)', () => {
  it('arbitrary text and JSON is an event or a malformed-event error, never anything else', async () => {
    const text = fc.oneof(
      fc.string(),
      fc.jsonValue().map((value) => JSON.stringify(value)),
    );
    await runCorpus('events', text, (body) => {
      try {
        const event = parseEvent(body);
        expect(typeof event.event).toBe('string');
      } catch (error) {
        expect(error).toBeInstanceOf(PermanentError);
        expect((error as PermanentError).code).toBe('malformed-event');
        expect((error as Error).message).toMatch(/^(event is not JSON|not a cldist event): /);
      }
    });
  });

  it('a documented event with one field dropped, retyped or added is refused, naming the field', async () => {
    const mutation = fc.record({
      index: fc.nat(),
      kind: fc.constantFrom('drop', 'retype', 'add'),
      junk: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.boolean()),
      extra: fc
        .string({ minLength: 1, maxLength: 12 })
        .filter(
          (key) =>
            !['event', 'source', 'channel', 'board', 'version', 'artifact', 'at', 'detail'].includes(key),
        ),
    });
    await runCorpus('events', mutation, ({ index, kind, junk, extra }) => {
      const example = structuredClone(examples[index % examples.length] ?? {});
      const fields = Object.keys(example).filter((key) => key !== 'event');
      const field = fields[index % fields.length] ?? 'at';
      if (kind === 'drop') delete example[field];
      if (kind === 'retype') example[field] = junk;
      if (kind === 'add') example[extra] = junk;
      const named = kind === 'add' ? extra : field;
      try {
        parseEvent(JSON.stringify(example));
      } catch (error) {
        expect((error as PermanentError).code).toBe('malformed-event');
        expect((error as Error).message).toContain(kind === 'add' ? 'Unrecognized key' : named);
        return;
      }
      throw new Error(`accepted ${kind} of ${named}`);
    });
  });

  it('the subscriber accepts only release.mirrored, raw or inside an SNS envelope', async () => {
    await runCorpus('events', fc.tuple(fc.nat(), fc.boolean()), ([index, wrapped]) => {
      const example = examples[index % examples.length] ?? {};
      const raw = JSON.stringify(example);
      const body = wrapped ? JSON.stringify({ Type: 'Notification', Message: raw }) : raw;
      if (example.event === 'release.mirrored') {
        expect(readReleaseMirrored(body).version).toBe(example.version);
      } else {
        expectRefused(() => readReleaseMirrored(body), 'unusable-event');
        expect(() => readReleaseMirrored(body)).toThrow(UnusableEventError);
      }
    });
  });
});
