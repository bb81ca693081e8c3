import fc from 'fast-check';
import { XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { createUpdateRoutes } from '../../shared/api/update-routes.ts';
import {
  maxOmahaBodyBytes,
  OmahaRequestError,
  parseOmahaRequest,
} from '../../shared/update/omaha-request.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';
import {
  channelSources,
  memoryGroups,
  memoryPayloads,
  memoryRecorder,
  omahaCheck,
} from '../support/update-fixtures.ts';
import { reportTallies, runCorpus, within } from './corpus-support.ts';

afterAll(() => reportTallies('omaha-bodies'));

const payloads = memoryPayloads();
payloads.add('amd64-usr', '4152.2.0', 'flatcar_production_update.gz');
const recorder = memoryRecorder();
const updates = createUpdateService(
  {
    groups: memoryGroups(),
    current: {
      getCurrent: async ({ channel, board }) => ({
        source: 'flatcar',
        channel,
        board,
        version: '4152.2.0',
        updatedAt: '2026-12-01T00:00:00Z',
      }),
    },
    payloads,
    recorder,
    clock: () => new Date('2026-12-03T00:00:00Z'),
  },
  { mirrorBaseUrl: 'http://127.0.0.1:8080/mirror', sources: channelSources('stable') },
);
const routes = createUpdateRoutes(updates, async () => {
  throw new Error('no admin route is called by this corpus');
});

async function post(body: string): Promise<{ status: number; text: string }> {
  const response = await within(
    2000,
    'an Omaha answer',
    Promise.resolve(
      routes.request('/v1/update/', { method: 'POST', body, headers: { 'Content-Type': 'text/xml' } }),
    ),
  );
  return { status: response.status, text: await response.text() };
}

/** What every answer must be: a known status and a well-formed XML document, never a 500. */
function expectOmahaAnswer(answer: { status: number; text: string }): void {
  expect([200, 400, 413]).toContain(answer.status);
  expect(XMLValidator.validate(answer.text)).toBe(true);
  expect(answer.text).toMatch(
    /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<response protocol="3\.0" server="cldist"/,
  );
}

const attributeNames = [
  'appid',
  'version',
  'track',
  'board',
  'machineid',
  'oem',
  'bootid',
  '__proto__',
  'constructor',
];
const wrongValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer().map(String),
  fc.constantFrom(
    '',
    ' ',
    '{}',
    '{{x}}',
    '1e400',
    'NaN',
    '-1',
    '../../etc/passwd',
    'a'.repeat(300),
    '\u202e\u0000',
    '&amp;',
    '&#0;',
  ),
);
const escapeAttribute = (value: string) =>
  value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');

/** A real check with one attribute given a wrong value, written escaped or raw. */
const wrongType = fc
  .tuple(fc.constantFrom(...attributeNames), wrongValue, fc.boolean())
  .map(([name, value, escaped]) => {
    const written = escaped ? escapeAttribute(value) : value;
    const base = omahaCheck();
    const pattern = new RegExp(`\\s${name}="[^"]*"`);
    return pattern.test(base)
      ? base.replace(pattern, ` ${name}="${written}"`)
      : base.replace('<app ', `<app ${name}="${written}" `);
  });

/** Events with types that are not integers, missing results, error codes out of range. */
const wrongEvent = fc.tuple(wrongValue, wrongValue, fc.option(wrongValue)).map(([type, result, code]) =>
  omahaCheck({
    events: `<event eventtype="${escapeAttribute(type)}" eventresult="${escapeAttribute(result)}"${code === null ? '' : ` errorcode="${escapeAttribute(code)}"`}></event>`,
  }),
);

/** A real check cut short, or with bytes spliced in. */
const malformed = fc.oneof(
  fc.nat({ max: 900 }).map((at) => omahaCheck().slice(0, at)),
  fc
    .tuple(
      fc.nat({ max: 900 }),
      fc.constantFrom('<', '>', '&', '"', '</app>', '<app>', '<!--', ']]>', '\u0000', '<?x ?>'),
    )
    .map(([at, junk]) => {
      const base = omahaCheck();
      return base.slice(0, at) + junk + base.slice(at);
    }),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

const laughs = (levels: number) => {
  const entities = Array.from({ length: levels }, (_, i) =>
    i === 0 ? '<!ENTITY lol0 "lol">' : `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`,
  ).join('');
  return `<?xml version="1.0"?><!DOCTYPE request [${entities}]><request protocol="3.0"><app appid="&lol${levels - 1};"/></request>`;
};

/** Entity expansion, external entities and declarations in every spelling. */
const entityAttack = fc.oneof(
  fc.integer({ min: 1, max: 12 }).map(laughs),
  fc.constantFrom(
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request protocol="3.0"><app appid="&x;"/></request>',
    '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><request protocol="3.0"/>',
    '<!doctype request><request protocol="3.0"/>',
    omahaCheck().replace('<request', '<!DOCTYPE request SYSTEM "http://127.0.0.1:9/omaha.dtd">\n<request'),
    omahaCheck().replace('track="stable"', 'track="&xxe;"'),
  ),
);

/** Structure at the limits: deep nesting, many apps, many events, many attributes. */
const oversized = fc.oneof(
  fc
    .integer({ min: 9, max: 2000 })
    .map((depth) => `<request protocol="3.0">${'<app>'.repeat(depth)}${'</app>'.repeat(depth)}</request>`),
  fc
    .integer({ min: 5, max: 40 })
    .map((n) => omahaCheck().replace(/<app [\s\S]*<\/app>/, (app) => app.repeat(n))),
  fc
    .integer({ min: 17, max: 200 })
    .map((n) => omahaCheck({ events: '<event eventtype="3" eventresult="1"/>'.repeat(n) })),
  fc
    .integer({ min: 50, max: 1500 })
    .map((n) =>
      omahaCheck().replace('<app ', `<app ${Array.from({ length: n }, (_, i) => `a${i}="x"`).join(' ')} `),
    ),
);

describe('Omaha request bodies corpus', () => {
  it('answers wrong attribute types with an Omaha status or a 400 naming the attribute, never a 500', async () => {
    await runCorpus('Omaha (wrong types)', fc.oneof(wrongType, wrongEvent), async (body) => {
      const answer = await post(body);
      expectOmahaAnswer(answer);
      if (answer.status === 400)
        expect(answer.text).toMatch(/error-(bad-attribute|missing-attribute|malformed-xml)/);
    });
  });

  it('refuses malformed XML with 400 and a reason, never a 500', async () => {
    await runCorpus('Omaha (malformed)', malformed, async (body) => {
      const answer = await post(body);
      expectOmahaAnswer(answer);
    });
  });

  it('never expands an entity nor reads an external one: the declaration itself is refused', async () => {
    await runCorpus(
      'Omaha (entities)',
      entityAttack,
      async (body) => {
        const answer = await post(body);
        expectOmahaAnswer(answer);
        expect(answer.status).toBe(body.length > maxOmahaBodyBytes ? 413 : 400);
        if (answer.status === 400) {
          expect(answer.text).toMatch(/error-(doctype-refused|malformed-xml|bad-attribute)/);
          expect(answer.text).not.toContain('lollol');
        }
      },
      200,
    );
  });

  it('caps depth, counts and size before any work grows with them', async () => {
    await runCorpus(
      'Omaha (oversized)',
      oversized,
      async (body) => {
        const answer = await post(body);
        expectOmahaAnswer(answer);
        expect(answer.status, body.slice(0, 200)).not.toBe(200);
      },
      200,
    );
    const huge = await post('<request protocol="3.0">'.padEnd(maxOmahaBodyBytes + 1, ' '));
    expect(huge.status).toBe(413);
  });

  it('parses or refuses with an OmahaRequestError, and nothing else, whatever the text', async () => {
    await runCorpus('parseOmahaRequest', fc.oneof(wrongType, malformed, entityAttack), (body) => {
      try {
        const request = parseOmahaRequest(body);
        for (const app of request.apps) expect(Object.getPrototypeOf(app)).toBe(Object.prototype);
      } catch (error) {
        expect(error).toBeInstanceOf(OmahaRequestError);
      }
    });
  });
});
