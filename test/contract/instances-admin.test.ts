import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { parseConfig } from '../../shared/config.ts';
import { loadIdIndex, withRecordCache } from '../../shared/instances/record-cache.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { describeContract } from '../support/contract.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { adminToken, metadataHarness } from '../support/metadata-harness.ts';

type Send = (path: string, init?: RequestInit) => Promise<Response>;

interface Harness {
  send: Send;
  instances: InstanceRepository;
  setNow(date: Date): void;
  internalErrors: unknown[];
}

const start = new Date('2026-01-01T00:00:00Z');
const ignitionConfig = {
  ignition: { version: '3.3.0' },
  storage: { files: [{ path: '/etc/hostname', mode: 420, contents: { source: 'data:,node' } }] },
};
const admin = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };

async function makeHarness(shape: { server: boolean; cache: boolean }) {
  const clients = emulatorClients();
  const table = await freshTable(clients, 'admin');
  await waitUntilTableExists(
    { client: clients.dynamodb, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: table },
  );
  const ledger = createDynamoInstanceRepository(clients.doc, { table, flushIntervalMs: 10 });
  const instances = shape.cache ? withRecordCache(ledger, { index: await loadIdIndex(ledger) }) : ledger;
  const dir = await mkdtemp(join(tmpdir(), 'cldist-admin-'));
  let now = start;
  const internalErrors: unknown[] = [];
  const app = createApiApp(
    {
      instances,
      bodies: createLocalStore(dir),
      clock: () => now,
      adminAuth: { kind: 'bearer', token: adminToken },
      onInternalError: (error) => internalErrors.push(error),
    },
    parseConfig({}),
  );
  let server: RunningServer | undefined;
  let send: Send = async (path, init) => app.request(path, init);
  if (shape.server) {
    const running = await serveNode(app, { host: '127.0.0.1', port: 0 });
    server = running;
    send = (path, init) => fetch(`${running.url}${path}`, init);
  }
  return {
    subject: {
      send,
      instances,
      setNow: (date: Date) => {
        now = date;
      },
      internalErrors,
    } satisfies Harness,
    cleanup: async () => {
      await server?.close();
      await instances.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function lines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function fetchIgnition(send: Send, id: string, token: string): Promise<Response> {
  return send(`/v1/instances/${id}/ignition?token=${encodeURIComponent(token)}`, {
    headers: { 'User-Agent': 'Ignition/test' },
  });
}

describeContract<Harness>(
  'instance admin routes',
  [
    { name: 'app.request, no cache', make: () => makeHarness({ server: false, cache: false }) },
    { name: 'node server with the record cache', make: () => makeHarness({ server: true, cache: true }) },
  ],
  (make) => {
    let h: Harness;
    let cleanup: (() => Promise<void>) | undefined;
    beforeEach(async () => {
      const made = await make();
      h = made.subject;
      cleanup = made.cleanup;
    });
    afterEach(async () => {
      await cleanup?.();
      expect(h.internalErrors).toEqual([]);
    });

    const put = (id: string, body: unknown, query = '') =>
      h.send(`/v1/instances/${id}${query}`, {
        method: 'PUT',
        headers: admin,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const reserve = (id: string, body: unknown = {}) =>
      h.send(`/v1/instances/${id}/reserve`, { method: 'POST', headers: admin, body: JSON.stringify(body) });

    it('takes a raw Ignition document as the PUT body and serves its bytes unchanged', async () => {
      const text = `${JSON.stringify(ignitionConfig, null, 2)}\n`;
      const response = await put('raw', text);
      expect(response.status).toBe(201);
      const { token } = (await response.json()) as { token: string };
      expect(await (await fetchIgnition(h.send, 'raw', token)).text()).toBe(text);
    });

    it('answers a body of neither form with a 400 that shows both forms', async () => {
      for (const body of [{ passwd: {}, storage: {} }, [ignitionConfig], {}]) {
        const response = await put('wrong-shape', body);
        expect(response.status).toBe(400);
        const answer = (await response.json()) as { error: { message: string; path: string } };
        expect(answer.error.path).toBe('$');
        expect(answer.error.message).toContain('raw Ignition config');
        expect(answer.error.message).toContain('wrapped form');
      }
      const yaml = await put('wrong-shape', '#cloud-config\nhostname: x\n');
      expect(yaml.status).toBe(400);
      expect(((await yaml.json()) as { error: { message: string } }).error.message).toContain(
        '{"cloudConfig":"#cloud-config',
      );
      expect(await h.instances.get('wrong-shape')).toBeUndefined();
    });

    it('lists instances by prefix, page by page with cursors, without tokens', async () => {
      for (const id of ['web-1', 'web-2', 'web-3', 'db-1', 'webby']) {
        expect((await put(id, { ignition: ignitionConfig })).status).toBe(201);
      }
      const seen: string[] = [];
      let cursor = '';
      for (let page = 0; page < 10; page++) {
        const response = await h.send(`/v1/instances?prefix=web-&limit=2${cursor}`, { headers: admin });
        expect(response.status).toBe(200);
        const answer = (await response.json()) as { instances: { id: string }[]; next?: string };
        expect(answer.instances.length).toBeLessThanOrEqual(2);
        seen.push(...answer.instances.map((i) => i.id));
        expect(JSON.stringify(answer)).not.toMatch(/tokenHash|bodyKey/);
        if (answer.next === undefined) break;
        cursor = `&cursor=${answer.next}`;
      }
      expect(seen).toEqual(['web-1', 'web-2', 'web-3']);
      const all = (await (await h.send('/v1/instances', { headers: admin })).json()) as {
        instances: { id: string; state: string }[];
      };
      expect(all.instances.map((i) => i.id)).toEqual(['db-1', 'web-1', 'web-2', 'web-3', 'webby']);
      expect(all.instances.every((i) => i.state === 'ready')).toBe(true);
    });

    it('refuses a bad prefix, limit or cursor with a 400 naming it, and an anonymous list with 401', async () => {
      for (const [query, path] of [
        ['prefix=../x', '?prefix'],
        ['limit=0', '?limit'],
        ['limit=abc', '?limit'],
        ['cursor=not-a-cursor!', '?cursor'],
        [`cursor=${Buffer.from('a/b').toString('base64url')}`, '?cursor'],
      ]) {
        const response = await h.send(`/v1/instances?${query}`, { headers: admin });
        expect(response.status, query).toBe(400);
        expect(((await response.json()) as { error: { path: string } }).error.path).toBe(path);
      }
      expect((await h.send('/v1/instances')).status).toBe(401);
    });

    it('registers JSON lines one by one and stops at the first bad line, keeping those before it', async () => {
      const body = [
        JSON.stringify({ id: 'bulk-1', ignition: ignitionConfig }),
        '',
        JSON.stringify({ id: 'bulk-2', ignition: JSON.stringify(ignitionConfig), oneTime: true }),
        JSON.stringify({ id: 'bulk-3', ignition: { ignition: { version: '9.9.9' } } }),
        JSON.stringify({ id: 'bulk-4', ignition: ignitionConfig }),
      ].join('\n');
      const response = await h.send('/v1/instances', { method: 'POST', headers: admin, body });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('application/x-ndjson');
      const answer = lines(await response.text());
      expect(answer.map((a) => [a.line, a.id])).toEqual([
        [1, 'bulk-1'],
        [3, 'bulk-2'],
        [4, 'bulk-3'],
      ]);
      expect(answer[2]).toMatchObject({ error: { code: 'invalid-instance-config' } });
      expect(answer.some((a) => a.done === true)).toBe(false);
      for (const ok of answer.slice(0, 2)) {
        const fetched = await fetchIgnition(h.send, String(ok.id), String(ok.token));
        expect(fetched.status).toBe(200);
      }
      expect(await h.instances.get('bulk-3')).toBeUndefined();
      expect(await h.instances.get('bulk-4')).toBeUndefined();
    });

    it('ends a clean bulk run with a done line, and refuses a repeated id or a non-object line', async () => {
      const good = [
        JSON.stringify({ id: 'ok-1', ignition: ignitionConfig }),
        JSON.stringify({ id: 'ok-raw', ...ignitionConfig }),
      ].join('\r\n');
      const done = lines(
        await (await h.send('/v1/instances', { method: 'POST', headers: admin, body: good })).text(),
      );
      expect(done.at(-1)).toEqual({ done: true, registered: 2 });
      const raw = await fetchIgnition(h.send, 'ok-raw', String(done[1]?.token));
      expect(await raw.json()).toEqual(ignitionConfig);
      const repeated = `${JSON.stringify({ id: 'twice', ignition: ignitionConfig })}\n${JSON.stringify({ id: 'twice', ignition: ignitionConfig })}\n[1]`;
      const answer = lines(
        await (await h.send('/v1/instances', { method: 'POST', headers: admin, body: repeated })).text(),
      );
      expect(answer[1]).toMatchObject({ line: 2, error: { code: 'invalid-line' } });
      expect(JSON.stringify(answer[1])).toContain('earlier line');
      const notObject = lines(
        await (await h.send('/v1/instances', { method: 'POST', headers: admin, body: '[1]\n' })).text(),
      );
      expect(notObject).toEqual([{ line: 1, error: expect.objectContaining({ code: 'invalid-line' }) }]);
    });

    it('deletes by prefix only with confirm=true, in bounded rounds, and nothing outside the prefix', async () => {
      for (const id of ['old-1', 'old-2', 'old-3', 'older', 'keep-1'])
        await put(id, { ignition: ignitionConfig });
      const refused = await h.send('/v1/instances?prefix=old-', { method: 'DELETE', headers: admin });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { path: string } }).error.path).toBe('?confirm');
      const everything = await h.send('/v1/instances?confirm=true', { method: 'DELETE', headers: admin });
      expect(everything.status).toBe(400);
      const first = lines(
        await (
          await h.send('/v1/instances?prefix=old-&confirm=true&limit=2', { method: 'DELETE', headers: admin })
        ).text(),
      );
      expect(first).toEqual([
        { id: 'old-1', deleted: true },
        { id: 'old-2', deleted: true },
        { done: true, deleted: 2, more: true },
      ]);
      const second = lines(
        await (
          await h.send('/v1/instances?prefix=old-&confirm=true&limit=2', { method: 'DELETE', headers: admin })
        ).text(),
      );
      expect(second).toEqual([
        { id: 'old-3', deleted: true },
        { done: true, deleted: 1, more: false },
      ]);
      for (const id of ['older', 'keep-1']) expect(await h.instances.get(id)).toBeDefined();
      expect(await h.instances.get('old-3')).toBeUndefined();
    });

    it('revokes a token: the old one stops at once, the new one gets the same config', async () => {
      const { token: old } = (await (await put('rev', { ignition: ignitionConfig })).json()) as {
        token: string;
      };
      const before = await h.instances.get('rev');
      const response = await h.send('/v1/instances/rev/revoke', { method: 'POST', headers: admin });
      expect(response.status).toBe(200);
      const { token, ignitionUrl } = (await response.json()) as { token: string; ignitionUrl: string };
      expect(token).not.toBe(old);
      expect(ignitionUrl).toContain(`token=${token}`);
      expect((await fetchIgnition(h.send, 'rev', old)).status).toBe(404);
      const fresh = await fetchIgnition(h.send, 'rev', token);
      expect(fresh.status).toBe(200);
      expect(fresh.headers.get('etag')).toBe(before?.etag);
      expect((await h.send('/v1/instances/nobody/revoke', { method: 'POST', headers: admin })).status).toBe(
        404,
      );
    });

    it('answers a reserved instance 503 with Retry-After (audited) until its config is put, keeping its token', async () => {
      const reserved = await reserve('early', { deadline: '2026-01-01T00:10:00Z' });
      expect(reserved.status).toBe(201);
      const { token, ignitionUrl, reservedUntil } = (await reserved.json()) as Record<string, string>;
      expect(reservedUntil).toBe('2026-01-01T00:10:00.000Z');
      expect(ignitionUrl).toContain(`token=${token}`);
      const waiting = await fetchIgnition(h.send, 'early', token ?? '');
      expect(waiting.status).toBe(503);
      expect(waiting.headers.get('retry-after')).toBe('5');
      const wrong = await fetchIgnition(h.send, 'early', 'not-the-token');
      const unknown = await fetchIgnition(h.send, 'never-heard-of', 'not-the-token');
      expect([wrong.status, unknown.status]).toEqual([404, 404]);
      expect(await wrong.text()).toBe(await unknown.text());
      const described = (await (await h.send('/v1/instances/early', { headers: admin })).json()) as Record<
        string,
        unknown
      > & { audit: { outcome: string }[] };
      expect(described).toMatchObject({ state: 'pending', reservedUntil: '2026-01-01T00:10:00.000Z' });
      expect(described).not.toHaveProperty('etag');
      expect(described).not.toHaveProperty('kind');
      expect(described).not.toHaveProperty('size');
      expect(described.audit.map((a) => a.outcome)).toEqual(['pending']);
      expect((await reserve('early')).status).toBe(409);

      const putAnswer = await put('early', { ignition: ignitionConfig });
      expect(putAnswer.status).toBe(200);
      const body = (await putAnswer.json()) as Record<string, unknown>;
      expect(body.tokenKept).toBe(true);
      expect(body.token).toBeUndefined();
      expect((await fetchIgnition(h.send, 'early', token ?? '')).status).toBe(200);
      expect((await reserve('early')).status).toBe(409);
    });

    it('answers 404 once the deadline passes with no config; --new-token on the put replaces the token', async () => {
      const { token } = (await (await reserve('late', { deadline: '2026-01-01T00:05:00Z' })).json()) as {
        token: string;
      };
      h.setNow(new Date('2026-01-01T00:05:00Z'));
      const lapsed = await fetchIgnition(h.send, 'late', token);
      expect(lapsed.status).toBe(404);
      const listed = (await (await h.send('/v1/instances?prefix=late', { headers: admin })).json()) as {
        instances: { state: string }[];
      };
      expect(listed.instances.map((i) => i.state)).toEqual(['lapsed']);

      const { token: second } = (await (await reserve('renew')).json()) as { token: string };
      const renewed = (await (await put('renew', { ignition: ignitionConfig }, '?newToken=true')).json()) as {
        token: string;
      };
      expect(renewed.token).not.toBe(second);
      expect((await fetchIgnition(h.send, 'renew', second)).status).toBe(404);
      expect((await fetchIgnition(h.send, 'renew', renewed.token)).status).toBe(200);
    });

    it('lets exactly one of racing PUTs end a reservation; the rest get 409 and the winner is served', async () => {
      const { token } = (await (await reserve('race')).json()) as { token: string };
      const configs = [1, 2, 3, 4, 5].map((n) => ({
        ignition: { version: '3.3.0' },
        storage: { files: [{ path: `/etc/n${n}`, mode: 420, contents: { source: 'data:,x' } }] },
      }));
      // The race in question: every PUT has read the reservation before any writes. Without the barrier
      // a fast PUT (an inline body has no store write) may land before another reads, which then is a
      // plain replace of a ready instance rather than a racing end of the reservation.
      const read = h.instances.get;
      let waiting: (() => void)[] = [];
      h.instances.get = async (id) => {
        const record = await read(id);
        if (id === 'race' && waiting.length < configs.length) {
          await new Promise<void>((resolve) => {
            waiting.push(resolve);
            if (waiting.length === configs.length) for (const go of waiting) go();
          });
        }
        return record;
      };
      const answers = await Promise.all(configs.map((config) => put('race', { ignition: config })));
      h.instances.get = read;
      waiting = [];
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([200, 409, 409, 409, 409]);
      const winner = configs[answers.findIndex((a) => a.status === 200)];
      const served = await fetchIgnition(h.send, 'race', token);
      expect(served.status).toBe(200);
      expect(await served.json()).toEqual(winner);
    });

    it('refuses a reservation deadline in the past, too far ahead, or an unknown field', async () => {
      for (const body of [
        { deadline: '2025-12-31T23:59:59Z' },
        { deadline: '2026-02-01T00:00:00Z' },
        { deadline: 'tomorrow' },
        { until: '2026-01-01T01:00:00Z' },
      ]) {
        const response = await reserve('bad-deadline', body);
        expect(response.status, JSON.stringify(body)).toBe(400);
      }
      expect(await h.instances.get('bad-deadline')).toBeUndefined();
    });
  },
);

describe('a reserved instance on the metadata routes', () => {
  it('answers user data 503 with Retry-After while reserved, the config once put, and 404 after a lapse', async () => {
    const h = await metadataHarness({ config: {} });
    try {
      const reserved = await h.admin('/v1/instances/meta-early/reserve', {
        method: 'POST',
        body: JSON.stringify({ deadline: '2026-06-01T00:30:00Z', ips: ['10.0.0.7'] }),
      });
      expect(reserved.status).toBe(201);
      for (const path of [
        '/openstack/latest/user_data',
        '/latest/user-data',
        '/openstack/latest/meta_data.json',
      ]) {
        const waiting = await h.fromAddress('10.0.0.7', path);
        expect(waiting.status, path).toBe(503);
        expect(waiting.headers.get('retry-after')).toBe('5');
      }
      expect((await h.fromAddress('10.0.0.8', '/openstack/latest/user_data')).status).toBe(404);
      expect((await h.put('meta-early', { ignition: ignitionConfig })).status).toBe(200);
      const served = await h.fromAddress('10.0.0.7', '/openstack/latest/user_data');
      expect(served.status).toBe(200);
      expect(await served.json()).toEqual(ignitionConfig);

      await h.admin('/v1/instances/meta-late/reserve', {
        method: 'POST',
        body: JSON.stringify({ deadline: '2026-06-01T00:01:00Z', ips: ['10.0.0.9'] }),
      });
      h.setNow(new Date('2026-06-01T00:02:00Z'));
      expect((await h.fromAddress('10.0.0.9', '/latest/user-data')).status).toBe(404);
    } finally {
      await h.close();
    }
  });
});
