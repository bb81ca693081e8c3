import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsDocPath, renderEventsDoc, undocumentedEvents } from '../../local/events-doc.ts';
import { parseConfig } from '../../shared/config.ts';
import { eventSchema, eventSchemas } from '../../shared/events.ts';
import { type CldistEvent, type EventName, eventNames } from '../../shared/messages.ts';
import { runPoll } from '../../shared/mirror/poller.ts';
import { keyringChecker } from '../../shared/mirror/signatures.ts';
import { loadKeyringFromConfig } from '../../shared/verify/keyring.ts';
import { drain, type MirrorRig, startRig } from './mirror-harness.ts';

const board = 'amd64-usr';

/** Every fenced JSON block marked `<!-- example: NAME -->` in docs/events.md. */
function examplesIn(doc: string): { event: string; body: unknown }[] {
  const pattern = /<!-- example: ([a-z._]+) -->\n```json\n([\s\S]*?)\n```/g;
  return [...doc.matchAll(pattern)].map((match) => ({
    event: match[1] ?? '',
    body: JSON.parse(match[2] ?? 'null') as unknown,
  }));
}

describe('published events against their schemas (docs/events.md)', () => {
  let rig: MirrorRig;
  let events: CldistEvent[] = [];

  beforeAll(async () => {
    rig = await startRig({
      channels: ['stable'],
      // 20.0.0 is pruned once 20.3.0, the next release mirrored in full, is announced.
      keepReleases: 1,
      artifacts: [
        { name: 'version.txt' },
        { name: 'image.bin' },
        { name: 'image.bin.DIGESTS', required: false },
        { name: 'extra.bin', required: false },
        { name: 'broken.bin', required: false },
      ],
    });
    const wrongDigests = `# SHA512 HASH\n${'ab'.repeat(64)}  image.bin\n`;
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '20.0.0',
      artifacts: [
        { name: 'image.bin', size: 2000 },
        { name: 'broken.bin', size: 100 },
      ],
    });
    rig.origin.putFile(`/stable/${board}/20.0.0/broken.bin.sig`, 'not a signature at all');
    await runPoll(rig.deps, rig.config);
    await drain(rig.worker(), rig.jobsQueue);
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '20.1.0',
      artifacts: [
        { name: 'image.bin', size: 2000 },
        { name: 'image.bin.DIGESTS', content: wrongDigests },
        { name: 'extra.bin', size: 10 },
        { name: 'broken.bin', size: 10 },
      ],
    });
    await runPoll(rig.deps, rig.config);
    await drain(rig.worker(), rig.jobsQueue);
    // The real Flatcar key: its signing subkey expires on 2027-03-08, so a poll on 2027-02-20 warns.
    const flatcar = await loadKeyringFromConfig(parseConfig({}).keyring);
    // A worker trusting only the Flatcar key meets a release signed by a key it does not hold, as after an
    // upstream rotation: the artifacts wait, and one signing_key.unknown is published.
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '20.2.0',
      artifacts: [{ name: 'image.bin', size: 100 }],
    });
    await runPoll(rig.deps, rig.config);
    await drain(
      rig.worker((deps) => ({
        ...deps,
        signatures: keyringChecker(flatcar, 's3://events-test/trust/keyring.asc'),
      })),
      rig.jobsQueue,
    );
    await rig.origin.publishRelease({
      channel: 'stable',
      board,
      version: '20.3.0',
      artifacts: [{ name: 'image.bin', size: 100 }],
    });
    await runPoll(rig.deps, rig.config);
    await drain(rig.worker(), rig.jobsQueue);
    rig.advance(Date.parse('2027-02-20T12:00:00Z') - Date.now());
    await runPoll({ ...rig.deps, signatures: keyringChecker(flatcar) }, rig.config);
    events = await rig.events();
  }, 60_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('emits every documented event through the real pipeline, each valid against its schema', () => {
    const seen = new Set(events.map((event) => event.event));
    expect([...seen].sort()).toEqual([...eventNames].sort());
    for (const event of events) {
      const result = eventSchemas[event.event].safeParse(event);
      expect(result.error?.issues, JSON.stringify(event)).toBeUndefined();
    }
    const reasons = events
      .filter((event) => event.event === 'artifact.verification_failed')
      .map((event) => [event.artifact, event.detail.reason])
      .sort();
    expect(reasons).toEqual([
      ['broken.bin', 'garbage-signature'],
      ['image.bin', 'digests-mismatch'],
    ]);
    const pruned = events.filter((event) => event.event === 'release.pruned');
    expect(pruned.map((event) => [event.version, event.detail.storePrefix])).toEqual([
      ['20.0.0', `stable/${board}/20.0.0/`],
    ]);
  });

  it('refuses what a subscriber must not trust: an unknown event, a missing field, an extra field', () => {
    const mirrored = events.find((event) => event.event === 'release.mirrored');
    expect(mirrored).toBeDefined();
    expect(eventSchema.safeParse({ ...mirrored, event: 'release.deleted' }).success).toBe(false);
    expect(eventSchema.safeParse({ ...mirrored, version: undefined }).success).toBe(false);
    expect(eventSchema.safeParse({ ...mirrored, version: '1.0/../x' }).success).toBe(false);
    expect(eventSchema.safeParse({ ...mirrored, extra: 1 }).success).toBe(false);
  });

  it('docs/events.md shows the schemas the code defines, and a valid example of each event', async () => {
    const doc = await readFile(eventsDocPath, 'utf8');
    expect(undocumentedEvents(doc)).toEqual([]);
    expect(renderEventsDoc(doc), 'docs/events.md is out of date: run npm run docs:events').toBe(doc);
    const examples = examplesIn(doc);
    expect(examples.map((example) => example.event).sort()).toEqual([...eventNames].sort());
    for (const example of examples) {
      const schema = eventSchemas[example.event as EventName];
      const result = schema.safeParse(example.body);
      expect(result.error?.issues, `example of ${example.event}`).toBeUndefined();
      expect((example.body as { event?: string }).event).toBe(example.event);
    }
  });
});
