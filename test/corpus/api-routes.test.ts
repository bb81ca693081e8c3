import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import type { AwsClients } from '../../shared/aws-clients.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { maxInstanceBodyBytes } from '../../shared/instances/service.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { ledgerKeySchema } from '../../shared/ledger/table.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { reportTallies, runCorpus, within } from './corpus-support.ts';
import { isAtOrUnder, wrongTypeCases } from './ignition-samples.ts';

const adminToken = 'corpus-admin-token-0123456789';
const perRequestMs = 10_000;

interface Subject {
  app: Hono;
  table: string;
  dir: string;
  instances: InstanceRepository;
  internalErrors: unknown[];
}

let clients: AwsClients;
const subjects: Subject[] = [];

async function makeSubject(): Promise<Subject> {
  const table = await freshTable(clients, 'corpus');
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  const dir = await mkdtemp(join(tmpdir(), 'cldist-corpus-api-'));
  const instances = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
  const internalErrors: unknown[] = [];
  const app = createApiApp(
    {
      instances,
      bodies: createLocalStore(dir),
      clock: () => new Date('2026-11-26T10:00:00Z'),
      adminAuth: { kind: 'bearer', token: adminToken },
      onInternalError: (error) => internalErrors.push(error),
    },
    parseConfig({}),
  );
  const subject = { app, table, dir, instances, internalErrors };
  subjects.push(subject);
  return subject;
}

async function tableItems(subject: Subject): Promise<Record<string, unknown>[]> {
  await subject.instances.flush();
  const scan = await clients.dynamodb.send(
    new ScanCommand({ TableName: subject.table, ConsistentRead: true }),
  );
  return (scan.Items ?? []) as Record<string, unknown>[];
}

async function storedFiles(subject: Subject): Promise<string[]> {
  const entries = await readdir(subject.dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

beforeAll(async () => {
  clients = emulatorClients();
});

afterAll(async () => {
  reportTallies('api-routes');
  for (const subject of subjects) {
    await subject.instances.close().catch(() => undefined);
    await rm(subject.dir, { recursive: true, force: true });
  }
});

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * The API rules for every refusal: a 4xx (or 503) JSON body `{ error: { code, message } }` with nothing of
 * the server inside (no stack frame, no file path), and nothing reported as an internal error.
 */
interface Refusal {
  status: number;
  code?: string;
  path?: unknown;
  issues?: unknown;
}

async function expectRefusal(subject: Subject, sent: Sent): Promise<Refusal> {
  const init: RequestInit = { method: sent.method, headers: sent.headers };
  if (sent.body !== undefined) init.body = sent.body;
  const response = await within(
    perRequestMs,
    `${sent.method} ${sent.path}`,
    Promise.resolve(subject.app.request(sent.path, init)),
  );
  const text = await response.text();
  const what = `${sent.method} ${sent.path.slice(0, 120)} -> ${response.status} ${text.slice(0, 300)}`;
  expect(subject.internalErrors, what).toEqual([]);
  expect(response.status === 503 || (response.status >= 400 && response.status < 500), what).toBe(true);
  expect(text, what).not.toContain(process.cwd());
  expect(text, what).not.toContain(subject.dir);
  expect(text, what).not.toMatch(/node_modules|file:\/\/|\.ts:\d+|\\n\s+at /);
  if (sent.method === 'HEAD') return { status: response.status };
  expect(response.headers.get('content-type'), what).toMatch(/^application\/json/);
  const body = JSON.parse(text) as {
    error?: { code?: unknown; message?: unknown; path?: unknown; issues?: unknown };
  };
  expect(typeof body.error?.code, what).toBe('string');
  expect(typeof body.error?.message, what).toBe('string');
  expect(String(body.error?.message), what).not.toMatch(/\n\s+at |\(\/|node:internal/);
  if (body.error?.code === 'invalid-instance-config' || body.error?.code === 'invalid-json') {
    expect(String(body.error.path), what).toMatch(/^\$/);
  }
  return {
    status: response.status,
    code: String(body.error?.code),
    path: body.error?.path,
    issues: body.error?.issues,
  };
}

const validIgnition = { ignition: { ignition: { version: '3.4.0' } } };

const idText = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/),
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E%2E',
    '.%2e',
    '%2e',
    '..%2f..%2fetc',
    'a%2Fb',
    '%00',
    'a%00b',
    '%',
    '%zz',
    '%E0%A4%A',
  ),
  fc.constantFrom('.staging', '-x', '_x', 'x y', 'x%20y', '%C3%A9', 'caf%C3%A9', 'node%0Aname', 'x;y', 'x:y'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map(encodeURIComponent),
  fc.integer({ min: 129, max: 260 }).map((n) => 'a'.repeat(n)),
  fc.constant('a'.repeat(200)),
);

const route = fc.oneof(
  { weight: 4, arbitrary: idText.map((id) => `/v1/instances/${id}`) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(idText, fc.constantFrom('ignition', 'cloud-config', 'Ignition', 'ignition/', 'x', '..', ''))
      .map(([id, tail]) => `/v1/instances/${id}/${tail}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '/',
      '/v1',
      '/v1/instances',
      '/v1/instances/',
      '//v1/instances/x',
      '/v1//instances/x',
      '/v2/instances/x',
      '/v1/instances/x/../y',
      '/V1/INSTANCES/x',
    ),
  },
);

const latin1 = (max: number) =>
  fc.string({
    unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)),
    maxLength: max,
  });

/** Authorization values that must never pass as the admin token. */
const wrongAuthorization = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'Bearer',
    'Bearer ',
    `Bearer ${adminToken}x`,
    `Bearer ${adminToken.slice(0, -1)}`,
    `Bearer ${adminToken.toUpperCase()}`,
    `Basic ${Buffer.from(`admin:${adminToken}`).toString('base64')}`,
    `${adminToken}`,
    `Token ${adminToken}`,
    `Bearer ${adminToken} ${adminToken}`,
    `Bearer\u00a0${adminToken}`,
    `Bearer "${adminToken}"`,
  ),
  latin1(100)
    .map((s) => `Bearer ${s}`)
    .filter((s) => s.trim() !== `Bearer ${adminToken}`),
  latin1(60),
  fc.integer({ min: 1000, max: 9000 }).map((n) => `Bearer ${'x'.repeat(n)}`),
);

const junkBody = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.constantFrom(
    '{',
    '[',
    'null',
    '""',
    '{"ignition":',
    '{"ignition": {}}',
    '{"cloudConfig": 1}',
    '{"ignition": "x"}',
  ),
  fc.constantFrom(
    '{"cloudConfig": "#!/bin/sh"}',
    '{"ignition": {"ignition": {"version": "9"}}}',
    '{"ignition": {}, "cloudConfig": ""}',
  ),
  fc.constantFrom(
    '{"ignition": {"ignition": {"version": "3.4.0"}}, "expiresAt": "2001-01-01T00:00:00Z"}',
    '{"ignition": {"ignition": {"version": "3.4.0"}}, "oneTime": "yes"}',
  ),
  fc.constantFrom(
    '{"ignition": {"ignition": {"version": "3.4.0"}}, "extra": 1}',
    '{"__proto__": {"ignition": {"ignition": {"version": "3.4.0"}}}}',
  ),
  fc.constantFrom(
    '{"ignition": {"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "relative"}]}}}',
  ),
);

describe('bad-input corpus: API routes', () => {
  let subject: Subject;
  beforeAll(async () => {
    subject = await makeSubject();
  });

  it('without the admin token, any method, path, header and body is refused and nothing is written', async () => {
    const statuses = new Map<number, number>();
    await runCorpus(
      'api: paths, headers, tokens',
      fc.record({
        method: fc.constantFrom('GET', 'PUT', 'DELETE', 'POST', 'PATCH', 'HEAD', 'OPTIONS'),
        path: fc
          .tuple(route, fc.option(latin1(40).map(encodeURIComponent), { nil: undefined }))
          .map(([path, query]) => (query === undefined ? path : `${path}?token=${query}`)),
        authorization: wrongAuthorization,
        body: fc.oneof(junkBody, fc.constant(JSON.stringify(validIgnition))),
        contentType: fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          '',
        ),
        userAgent: latin1(300),
      }),
      async ({ method, path, authorization, body, contentType, userAgent }) => {
        const headers: Record<string, string> = { 'User-Agent': userAgent };
        if (authorization !== undefined) headers.Authorization = authorization;
        if (contentType !== '') headers['Content-Type'] = contentType;
        const canHaveBody = method !== 'GET' && method !== 'HEAD';
        const { status } = await expectRefusal(subject, {
          method,
          path,
          headers,
          ...(canHaveBody && body !== undefined ? { body } : {}),
        });
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const seen = new URL(`http://localhost${path}`).pathname;
        const adminRoute = /^\/v1\/instances\/[^/]+$/.test(seen) && ['GET', 'PUT', 'DELETE'].includes(method);
        if (adminRoute) expect(status).toBe(401);
      },
      400,
    );
    process.stdout.write(
      `  unauthenticated requests by status: ${JSON.stringify(Object.fromEntries(statuses))}\n`,
    );
    expect(await tableItems(subject)).toEqual([]);
    expect(await storedFiles(subject)).toEqual([]);
  });

  it('with the admin token, bad ids and bad bodies are refused naming the problem, and nothing is written', async () => {
    const codes = new Map<string, number>();
    await runCorpus(
      'api: admin bodies and ids',
      fc.record({
        method: fc.constantFrom('PUT', 'PUT', 'PUT', 'GET', 'DELETE'),
        id: idText,
        body: junkBody,
        authorization: fc.constantFrom(
          `Bearer ${adminToken}`,
          `bearer ${adminToken}`,
          `Bearer \t${adminToken}  `,
        ),
      }),
      async ({ method, id, body, authorization }) => {
        const path = `/v1/instances/${id}`;
        const headers = { Authorization: authorization, 'Content-Type': 'application/json' };
        const sent =
          method === 'PUT' ? { method, path, headers, body: body ?? '' } : { method, path, headers };
        const { status, code } = await expectRefusal(subject, sent);
        codes.set(`${status} ${code}`, (codes.get(`${status} ${code}`) ?? 0) + 1);
        if (method === 'PUT') {
          expect([400, 404]).toContain(status);
          if (status === 400) expect(['invalid-json', 'invalid-instance-config']).toContain(code);
        } else {
          expect([400, 404]).toContain(status);
        }
      },
      400,
    );
    process.stdout.write(
      `  admin refusals by status and code: ${JSON.stringify(Object.fromEntries(codes))}\n`,
    );
    expect(await tableItems(subject)).toEqual([]);
    expect(await storedFiles(subject)).toEqual([]);
  });

  it('a body over 1 MiB, with or without Content-Length, is refused with 413 (401 without the token), nothing written', async () => {
    await runCorpus(
      'api: sizes',
      fc.record({
        extra: fc.integer({ min: 1, max: 512 * 1024 }),
        authorized: fc.boolean(),
        shape: fc.constantFrom('padding', 'string', 'files'),
        announced: fc.boolean(),
      }),
      async ({ extra, authorized, shape, announced }) => {
        const size = maxInstanceBodyBytes + extra;
        let body: string;
        if (shape === 'padding') {
          body = `${JSON.stringify(validIgnition)}${' '.repeat(size)}`;
        } else if (shape === 'string') {
          body = JSON.stringify({ cloudConfig: `#cloud-config\nx: ${'y'.repeat(size)}\n` });
        } else {
          const file = { path: '/etc/x', contents: { source: `data:,${'z'.repeat(1000)}` } };
          body = JSON.stringify({
            ignition: {
              ignition: { version: '3.4.0' },
              storage: {
                files: Array.from({ length: Math.ceil(size / 1000) }, (_, i) => ({
                  ...file,
                  path: `/etc/x${i}`,
                })),
              },
            },
          });
        }
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (authorized) headers.Authorization = `Bearer ${adminToken}`;
        if (announced) headers['Content-Length'] = String(Buffer.byteLength(body));
        const { status, code } = await expectRefusal(subject, {
          method: 'PUT',
          path: '/v1/instances/big-node',
          headers,
          body,
        });
        expect({ status, code }).toEqual(
          authorized ? { status: 413, code: 'too-large' } : { status: 401, code: 'unauthorized' },
        );
      },
      200,
    );
    expect(await tableItems(subject)).toEqual([]);
    expect(await storedFiles(subject)).toEqual([]);
  });
});

describe('bad-input corpus: Ignition bodies through the API', () => {
  let subject: Subject;
  beforeAll(async () => {
    subject = await makeSubject();
  });

  it('a wrong type at any JSON path is a 400 whose issues name that path, and nothing is written', async () => {
    await runCorpus(
      'api: ignition bodies',
      fc.tuple(wrongTypeCases, fc.boolean()),
      async ([{ mutated, named }, asText]) => {
        const ignition = asText ? JSON.stringify(mutated) : mutated;
        const { status, code, issues } = await expectRefusal(subject, {
          method: 'PUT',
          path: '/v1/instances/typed-node',
          headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ ignition }),
        });
        expect({ status, code }).toEqual({ status: 400, code: 'invalid-instance-config' });
        const paths = (issues as { path: string }[]).map((issue) => issue.path);
        expect(
          paths.some((path) => isAtOrUnder(path, named) || isAtOrUnder(path, `$.ignition${named.slice(1)}`)),
          `${named}: ${paths}`,
        ).toBe(true);
      },
      200,
    );
    expect(await tableItems(subject)).toEqual([]);
    expect(await storedFiles(subject)).toEqual([]);
  });

  // Found by this corpus: 20 kB of nesting once overflowed the stack in JSON.stringify (a 500).
  it('an Ignition object nested 10,000 deep is refused with a 4xx, not a 500', async () => {
    const own = await makeSubject();
    const depth = 10_000;
    const { status } = await expectRefusal(own, {
      method: 'PUT',
      path: '/v1/instances/deep-node',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: `{"ignition": {"ignition": {"version": "3.4.0"}, "x": ${'['.repeat(depth)}${']'.repeat(depth)}}}`,
    });
    expect(status).toBe(400);
  });

  // Found by this corpus: the yaml library's ReferenceError once escaped as a 500.
  it('a cloud-config with an alias to a missing anchor is a 400, not a 500', async () => {
    const own = await makeSubject();
    const { status } = await expectRefusal(own, {
      method: 'PUT',
      path: '/v1/instances/alias-node',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ cloudConfig: '#cloud-config\nc: *missing\n' }),
    });
    expect(status).toBe(400);
  });
});

describe('bad-input corpus: instance fetch routes', () => {
  let subject: Subject;
  let token: string;
  let before: Record<string, unknown>[];
  let filesBefore: string[];
  const id = 'corpus-node-1';

  beforeAll(async () => {
    subject = await makeSubject();
    const response = await subject.app.request(`/v1/instances/${id}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...validIgnition, oneTime: true }),
    });
    expect(response.status).toBe(201);
    token = ((await response.json()) as { token: string }).token;
    before = (await tableItems(subject)).filter((item) =>
      JSON.stringify(item[ledgerKeySchema.sortKey]).includes('meta'),
    );
    // A small config is kept in its record, so comparing the record compares the body too.
    expect(before).toHaveLength(1);
    expect(before[0]).toHaveProperty('bodyZ');
    filesBefore = await storedFiles(subject);
  });

  it('a wrong or missing token, by header or query, gets the same 404 and leaves the one-time config unused', async () => {
    await runCorpus(
      'api: instance tokens',
      fc.record({
        route: fc.constantFrom('ignition', 'cloud-config'),
        target: fc.oneof(fc.constant(id), idText),
        token: fc.oneof(
          fc.constant(undefined),
          fc.constantFrom('', ' ', 'null', 'undefined', adminToken),
          fc.constant(null).map(() => token.slice(0, -1)),
          fc.constant(null).map(() => `${token}x`),
          fc.constant(null).map(() => token.toUpperCase()),
          fc.base64String({ minLength: 43, maxLength: 44 }),
          latin1(80),
        ),
        via: fc.constantFrom('header', 'query', 'both-wrong-header', 'lowercase-bearer'),
        method: fc.constantFrom('GET', 'HEAD'),
      }),
      async ({ route, target, token: given, via, method }) => {
        const headers: Record<string, string> = {
          Accept: 'application/vnd.coreos.ignition+json;version=3.3.0, */*;q=0.1',
          'User-Agent': 'Ignition/corpus',
        };
        let query = '';
        if (given !== undefined) {
          if (via === 'header') headers.Authorization = `Bearer ${given}`;
          if (via === 'lowercase-bearer') headers.Authorization = `bearer ${given}`;
          if (via === 'query') query = `?token=${encodeURIComponent(given)}`;
          if (via === 'both-wrong-header') {
            headers.Authorization = `Bearer ${given}`;
            query = `?token=${encodeURIComponent(given)}`;
          }
        }
        const path = `/v1/instances/${target}/${route}${query}`;
        const { status, code } = await expectRefusal(subject, { method, path, headers });
        const seen = new URL(`http://localhost${path}`).pathname;
        if (/^\/v1\/instances\/[^/]+\/(ignition|cloud-config)$/.test(seen)) {
          expect(status).toBe(404);
          if (method === 'GET') expect(code).toBe('not-found');
        }
      },
      300,
    );
    const after = (await tableItems(subject)).filter((item) =>
      JSON.stringify(item[ledgerKeySchema.sortKey]).includes('meta'),
    );
    expect(after).toEqual(before);
    expect(await storedFiles(subject)).toEqual(filesBefore);
    const served = await subject.app.request(`/v1/instances/${id}/ignition`, {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(served.status).toBe(200);
  });

  it('a refused PUT over an existing instance leaves its record, body and token as they were', async () => {
    await runCorpus(
      'api: admin bodies and ids',
      junkBody,
      async (body) => {
        const { status } = await expectRefusal(subject, {
          method: 'PUT',
          path: `/v1/instances/${id}`,
          headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
          body: body ?? '',
        });
        expect(status).toBe(400);
      },
      200,
    );
    const after = (await tableItems(subject)).filter((item) =>
      JSON.stringify(item[ledgerKeySchema.sortKey]).includes('meta'),
    );
    expect(after).toEqual(before);
    expect(await storedFiles(subject)).toEqual(filesBefore);
    const served = await subject.app.request(`/v1/instances/${id}/ignition`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(served.status).toBe(200);
  });
});
