import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { type RunningServer, serveNode } from '../../shared/api/node-server.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { createDynamoLedger, type Ledger } from '../../shared/ledger/ledger.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';
import { tableActive } from '../integration/mirror-harness.ts';
import { runCldist } from '../support/cli.ts';
import { emulatorClients, freshTable } from '../support/emulators.ts';
import { channelSources, memoryPayloads, omahaCheck } from '../support/update-fixtures.ts';

const cldist = (args: string[]) => runCldist(args, { timeoutMs: 30_000 });

const token = 't'.repeat(40);
const admin = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };

describe('the update routes and `cldist updates groups` (dynalite ledger)', () => {
  const clients = emulatorClients();
  let dir: string;
  let ledger: Ledger;
  let app: Hono;
  let server: RunningServer;
  let connection: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-update-routes-'));
    const table = await freshTable(clients);
    await tableActive(table);
    ledger = createDynamoLedger(clients.doc, table);
    await ledger.advanceCurrent({
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
      version: '4152.2.0',
    });
    const payloads = memoryPayloads();
    payloads.add('amd64-usr', '4152.2.0', 'flatcar_production_update.gz');
    const updates = createUpdateService(
      { groups: ledger, current: ledger, payloads, clock: () => new Date(), cacheTtlMs: 0 },
      { mirrorBaseUrl: 'http://127.0.0.1:8080/mirror', sources: channelSources('stable') },
    );
    app = createApiApp(
      {
        instances: createDynamoInstanceRepository(clients.doc, { table }),
        bodies: createLocalStore(join(dir, 'configs')),
        clock: () => new Date(),
        adminAuth: { kind: 'bearer', token },
        updates,
      },
      parseConfig({}),
    );
    server = await serveNode(app, { host: '127.0.0.1', port: 0 });
    connection = ['--api', server.url, '--token', token];
  });

  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const check = (path: string, body: string) =>
    app.request(path, { method: 'POST', body, headers: { 'Content-Type': 'text/xml' } });

  it('answers Omaha at /v1/update/ and /v1/update, as XML, without credentials', async () => {
    for (const path of ['/v1/update/', '/v1/update']) {
      const response = await check(path, omahaCheck());
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/xml; charset=utf-8');
      expect(await response.text()).toMatch(/<manifest version="4152\.2\.0">/);
    }
  });

  it('refuses a body over the limit with 413, and nonsense with 400, never 500', async () => {
    const huge = await check('/v1/update/', `<request protocol="3.0">${' '.repeat(20_000)}</request>`);
    expect(huge.status).toBe(413);
    expect(await huge.text()).toMatch(/error-too-large.*larger than 16384 bytes/);
    const nonsense = await check('/v1/update/', '{"not":"xml"}');
    expect(nonsense.status).toBe(400);
    const lying = await app.request('/v1/update/', {
      method: 'POST',
      body: omahaCheck(),
      headers: { 'Content-Type': 'text/xml', 'Content-Length': '1e9' },
    });
    expect(lying.status).toBe(413);
  });

  it('counts a chunked body while reading it, over a real socket', async () => {
    const post = (chunks: string[]) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const url = new URL(`${server.url}/v1/update/`);
        const request = http.request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: { 'Content-Type': 'text/xml' },
          },
          (response) => {
            const parts: Buffer[] = [];
            response.on('data', (part: Buffer) => parts.push(part));
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, body: Buffer.concat(parts).toString() }),
            );
          },
        );
        request.on('error', reject);
        for (const chunk of chunks) request.write(chunk);
        request.end();
      });
    const small = omahaCheck();
    const ok = await post([small.slice(0, 100), small.slice(100)]);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/<manifest version="4152\.2\.0">/);
    const huge = await post(Array.from({ length: 20 }, () => ' '.repeat(1024)));
    expect(huge.status).toBe(413);
    expect(huge.body).toMatch(/error-too-large/);
  });

  it('keeps the group routes for admins, and names the bad field of a group', async () => {
    expect((await app.request('/v1/update-groups')).status).toBe(401);
    const bad = await app.request('/v1/update-groups/canary', {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify({ channel: 'stable', rollout: { kind: 'percent', percent: 130 } }),
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; issues: { path: string }[] } };
    expect(body.error.code).toBe('invalid-group');
    expect(body.error.issues.map((i) => i.path)).toEqual(['$.rollout.percent']);
    const badName = await app.request('/v1/update-groups/bad%20name', { headers: admin });
    expect(badName.status).toBe(400);
    expect((await app.request('/v1/update-groups/absent', { headers: admin })).status).toBe(404);
  });

  it('puts, lists, pauses, resumes and deletes groups from the CLI, and the endpoint obeys at once', async () => {
    const put = await cldist([
      'updates',
      'groups',
      'put',
      'canary',
      '--channel',
      'stable',
      '--percent',
      '100',
      '--window',
      '00:00-00:00',
      ...connection,
    ]);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    expect(put.stdout).toMatch(/^created update group canary\nNAME\s+CHANNEL\s+TARGET\s+STATE\s+ROLLOUT/);
    expect(put.stdout).toMatch(/canary\s+stable\s+follow\s+active\s+100%\s+00:00-00:00/);
    const offered = async () =>
      (await (await check('/v1/update/', omahaCheck({ track: 'canary' }))).text()).includes('<manifest');
    expect(await offered()).toBe(true);

    expect(await cldist(['updates', 'groups', 'pause', 'canary', ...connection])).toMatchObject({
      code: 0,
      stdout: 'paused update group canary\n',
    });
    expect(await offered()).toBe(false);
    expect((await ledger.getGroup('canary'))?.paused).toBe(true);
    await cldist(['updates', 'groups', 'resume', 'canary', ...connection]);
    expect(await offered()).toBe(true);

    const list = await cldist(['updates', 'groups', 'list', '--json', ...connection]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((g) => g.name)).toEqual(['canary']);
    expect(await cldist(['updates', 'groups', 'delete', 'canary', ...connection])).toMatchObject({ code: 0 });
    const gone = await cldist(['updates', 'groups', 'get', 'canary', ...connection]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/404.*no update group named canary/);
    const unknownTrack = await (await check('/v1/update/', omahaCheck({ track: 'canary' }))).text();
    expect(unknownTrack).toMatch(/status="error-unknownApplicationOrGroup"/);
  });

  it('refuses contradictory flags before sending anything, and pins a version with --pin', async () => {
    const run = await cldist([
      'updates',
      'groups',
      'put',
      'x',
      '--channel',
      'stable',
      '--percent',
      '5',
      '--max-per-period',
      '3',
      '--period-minutes',
      '60',
      ...connection,
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/choose one rollout/);
    const pinned = await cldist([
      'updates',
      'groups',
      'put',
      'frozen',
      '--channel',
      'stable',
      '--pin',
      '4081.2.0',
      ...connection,
    ]);
    expect(pinned).toMatchObject({ code: 0, stderr: '' });
    expect(pinned.stdout).toMatch(/frozen\s+stable\s+4081\.2\.0\s+active\s+all at once\s+any time/);
    expect((await ledger.getGroup('frozen'))?.version).toBe('4081.2.0');
    await cldist(['updates', 'groups', 'delete', 'frozen', ...connection]);
    const help = await cldist(['updates', 'groups', 'put', '--help']);
    expect(help.stdout).toMatch(/GROUP=<name>\s+in\s+\/etc\/flatcar\/update\.conf/);
  });
});
