import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiClient } from '../../local/metadata-proxy/api-client.ts';
import { createInstanceCache } from '../../local/metadata-proxy/instance-cache.ts';
import { proxyRetryAfterSeconds } from '../../local/metadata-proxy/options.ts';
import { type RunningProxy, startMetadataProxy } from '../../local/metadata-proxy/server.ts';
import { type StartedProxy, startProxyFromSettings } from '../../local/metadata-proxy/start.ts';
import { createLogger, type LogRecord } from '../../local/runtime/log.ts';
import { proxyHeaders, signInstanceId } from '../../shared/metadata/proxy-signature.ts';
import { waitFor } from '../e2e/serve-harness.ts';
import { ask, type ContractApi, startContractApi } from '../support/metadata-proxy-harness.ts';

const secret = 'aaaaaaaaaaaaaaaa0123456789abcdef0123456789abcdef';
const otherSecret = 'bbbbbbbbbbbbbbbbfedcba9876543210fedcba9876543210';
const vm1 = '127.0.0.21';
const vm2 = '127.0.0.22';
const stranger = '127.0.0.23';

interface Subject {
  api: ContractApi;
  proxy: RunningProxy;
  records: LogRecord[];
  now: { ms: number };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** The proxy in process with a hand-driven cache clock, against the contract stand-in. */
async function subject(
  options: {
    proxySecret?: string;
    apiSecrets?: string[];
    timeoutMs?: number;
    maxResponseBytes?: number;
  } = {},
): Promise<Subject> {
  const api = await startContractApi(options.apiSecrets ?? [secret]);
  api.addresses.set(vm1, 'i-one');
  api.addresses.set(vm2, 'i-two');
  const records: LogRecord[] = [];
  const logger = createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) });
  const now = { ms: 1_000_000 };
  const client = createApiClient({
    api: new URL(api.url),
    secret: () => options.proxySecret ?? secret,
    timeoutMs: options.timeoutMs ?? 5000,
  });
  const cache = createInstanceCache({
    ttlMs: 10_000,
    negativeTtlMs: 2000,
    maxEntries: 100,
    clock: () => now.ms,
  });
  const proxy = await startMetadataProxy(
    {
      host: '127.0.0.1',
      port: 0,
      maxResponseBytes: options.maxResponseBytes ?? 1024 * 1024,
      requestTimeoutMs: 5000,
      shutdownGraceMs: 1000,
    },
    { api: client, cache, logger },
  );
  cleanups.push(async () => {
    await proxy.close();
    client.close();
    await api.close();
  });
  return { api, proxy, records, now };
}

const userData = '/openstack/latest/user_data';

describe('metadata proxy against the API contract', () => {
  it('gives each instance its own data, identified by source address and signed for the API', async () => {
    const { api, proxy } = await subject();
    const one = await ask(`${proxy.url}${userData}`, { from: vm1 });
    const two = await ask(`${proxy.url}${userData}`, { from: vm2 });
    expect([one.status, one.body]).toEqual([200, 'user data of i-one']);
    expect([two.status, two.body]).toEqual([200, 'user data of i-two']);
    expect(one.headers['content-type']).toBe('application/octet-stream');
    const forwarded = api.seen.filter((s) => !s.url.startsWith('/v1/metadata/instance-id'));
    expect(forwarded.map((s) => s.url)).toEqual([`/v1/metadata${userData}`, `/v1/metadata${userData}`]);
    expect(forwarded[0]?.headers['x-instance-id-signature']).toBe(signInstanceId(secret, 'i-one'));
  });

  it('reuses its keep-alive sockets to the API without piling up listeners on them', async () => {
    const { proxy } = await subject();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 40; i++) {
        expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(200);
      }
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
  });

  it('answers 404 to an unregistered address without forwarding anything', async () => {
    const { api, proxy } = await subject();
    const answer = await ask(`${proxy.url}${userData}`, { from: stranger });
    expect(answer.status).toBe(404);
    expect(api.seen.every((s) => s.url.startsWith('/v1/metadata/instance-id'))).toBe(true);
  });

  it('is refused with a wrong secret: 502 with Retry-After, an error log, and no data', async () => {
    const { proxy, records } = await subject({ proxySecret: otherSecret });
    const answer = await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(answer.status).toBe(502);
    expect(answer.headers['retry-after']).toBe(String(proxyRetryAfterSeconds));
    expect(answer.body).not.toContain('i-one');
    expect(records.some((r) => r.event === 'proxy.lookup_refused' && r.level === 'error')).toBe(true);
    expect(JSON.stringify(records)).not.toContain(otherSecret);
  });

  it('maps a refused instance-id signature (secrets out of step) to 502, never passing the 403 on', async () => {
    const { api, proxy, records } = await subject();
    await ask(`${proxy.url}${userData}`, { from: vm1 });
    api.secrets.splice(0, api.secrets.length, otherSecret);
    // The lookup is cached, so only the forwarded request meets the new secret.
    const answer = await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(answer.status).toBe(502);
    expect(records.some((r) => r.event === 'proxy.signature_refused')).toBe(true);
  });

  it('drops identity headers the instance writes, even a correctly signed X-Instance-ID of another instance', async () => {
    const { api, proxy } = await subject();
    const answer = await ask(`${proxy.url}${userData}`, {
      from: vm1,
      headers: {
        [proxyHeaders.instanceId]: 'i-two',
        [proxyHeaders.instanceIdSignature]: signInstanceId(secret, 'i-two'),
        [proxyHeaders.address]: vm2,
        'X-Forwarded-For': vm2,
        Forwarded: `for=${vm2}`,
        'X-Real-IP': vm2,
        'X-Instance-Id-Extra': 'x',
      },
    });
    expect([answer.status, answer.body]).toEqual([200, 'user data of i-one']);
    const forwarded = api.seen.find((s) => s.url === `/v1/metadata${userData}`);
    expect(forwarded?.headers['x-instance-id']).toBe('i-one');
    expect(forwarded?.headers['x-instance-address']).toBe(vm1);
    for (const name of ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-instance-id-extra']) {
      expect(forwarded?.headers[name], name).toBeUndefined();
    }
    expect(api.seen.find((s) => s.url.startsWith('/v1/metadata/instance-id'))?.url).toContain(
      `address=${vm1}`,
    );
  });

  it('passes the IMDSv2 headers both ways and refuses a token PUT that carries X-Forwarded-For', async () => {
    const { api, proxy } = await subject();
    api.respond = (instanceId, req) =>
      req.method === 'PUT'
        ? {
            status: 200,
            headers: {
              'Content-Type': 'text/plain',
              'X-aws-ec2-metadata-token-ttl-seconds': String(
                req.headers['x-aws-ec2-metadata-token-ttl-seconds'],
              ),
              'Set-Cookie': 'leak=1',
            },
            body: `token-for-${instanceId}`,
          }
        : { status: 200, body: String(req.headers['x-aws-ec2-metadata-token']) };
    const put = await ask(`${proxy.url}/latest/api/token`, {
      from: vm1,
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '21600' },
    });
    expect([put.status, put.body]).toEqual([200, 'token-for-i-one']);
    expect(put.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('21600');
    expect(put.headers['set-cookie']).toBeUndefined();
    const get = await ask(`${proxy.url}/2019-10-01/user-data`, {
      from: vm1,
      headers: { 'X-aws-ec2-metadata-token': 'token-for-i-one' },
    });
    expect(get.body).toBe('token-for-i-one');

    const before = api.seen.length;
    const refused = await ask(`${proxy.url}/latest/api/token`, {
      from: vm1,
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '21600', 'X-Forwarded-For': '10.0.0.1' },
    });
    expect(refused.status).toBe(403);
    expect(api.seen.length).toBe(before);
  });

  it('passes status, Content-Type and Retry-After of the API answer through', async () => {
    const { api, proxy } = await subject();
    api.respond = () => ({
      status: 503,
      headers: { 'Retry-After': '7', 'Content-Type': 'application/json' },
      body: '{}',
    });
    const answer = await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('7');
    expect(answer.headers['content-type']).toBe('application/json');
  });

  it('asks the API once per address while the answer is fresh, and coalesces a burst of misses', async () => {
    const { api, proxy, now } = await subject();
    await Promise.all(Array.from({ length: 8 }, () => ask(`${proxy.url}${userData}`, { from: vm1 })));
    expect(api.lookups()).toBe(1);
    await ask(`${proxy.url}/openstack/latest/meta_data.json`, { from: vm1 });
    expect(api.lookups()).toBe(1);
    now.ms += 10_001;
    await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(api.lookups()).toBe(2);
  });

  it('remembers an unregistered address only briefly', async () => {
    const { api, proxy, now } = await subject();
    expect((await ask(`${proxy.url}${userData}`, { from: stranger })).status).toBe(404);
    api.addresses.set(stranger, 'i-late');
    expect((await ask(`${proxy.url}${userData}`, { from: stranger })).status).toBe(404);
    expect(api.lookups()).toBe(1);
    now.ms += 2001;
    const late = await ask(`${proxy.url}${userData}`, { from: stranger });
    expect([late.status, late.body]).toEqual([200, 'user data of i-late']);
  });

  it('answers 503 with Retry-After when the API fails or is down, and caches no failure', async () => {
    const { api, proxy } = await subject();
    api.lookupStatus = 500;
    const failing = await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(failing.status).toBe(503);
    expect(failing.headers['retry-after']).toBe(String(proxyRetryAfterSeconds));
    api.lookupStatus = undefined;
    expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(200);
    await api.close();
    const down = await ask(`${proxy.url}${userData}`, { from: vm2 });
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe(String(proxyRetryAfterSeconds));
  });

  it('answers 503 when the API does not answer within the timeout', async () => {
    const { api, proxy, records } = await subject({ timeoutMs: 300 });
    api.respond = () => 'hang';
    const answer = await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(answer.status).toBe(503);
    expect(records.some((r) => r.event === 'proxy.api_unavailable')).toBe(true);
  });

  it('refuses an answer larger than the limit, by declared length or by streamed bytes', async () => {
    const { api, proxy, records } = await subject({ maxResponseBytes: 1000 });
    api.respond = () => ({ status: 200, headers: { 'Content-Length': '5000' }, body: 'x'.repeat(5000) });
    const declared = await ask(`${proxy.url}${userData}`, { from: vm1 });
    expect(declared.status).toBe(502);
    expect(declared.body).not.toContain('xxx');
    api.respond = () => ({
      status: 200,
      headers: { 'Transfer-Encoding': 'chunked' },
      body: 'y'.repeat(5000),
    });
    await expect(ask(`${proxy.url}${userData}`, { from: vm1 })).rejects.toThrow();
    expect(records.filter((r) => r.event === 'proxy.response_too_large')).toHaveLength(2);
  });

  it('lets a request in flight finish on close, and takes no new connection', async () => {
    const { api, proxy } = await subject();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    api.respond = async (instanceId) => {
      await gate;
      return { status: 200, body: `late data of ${instanceId}` };
    };
    const inFlight = ask(`${proxy.url}${userData}`, { from: vm1 });
    await waitFor(
      () => api.seen.some((s) => s.url === `/v1/metadata${userData}`),
      'the request to reach the API',
      5000,
    );
    const closing = proxy.close();
    await expect(ask(`${proxy.url}${userData}`, { from: vm2 })).rejects.toThrow(/ECONNREFUSED/);
    release();
    const answer = await inFlight;
    expect([answer.status, answer.body]).toEqual([200, 'late data of i-one']);
    await closing;
  });

  it('refuses paths that could leave /v1/metadata, other methods and request bodies', async () => {
    const { api, proxy } = await subject();
    for (const path of ['/openstack/%2e%2e/%2e%2e/instances/i-two', '/a/%2F..%2Fx', '/a\\b']) {
      expect((await ask(`${proxy.url}${path}`, { from: vm1 })).status, path).toBe(400);
    }
    expect((await ask(`${proxy.url}${userData}`, { from: vm1, method: 'DELETE' })).status).toBe(405);
    expect(
      (await ask(`${proxy.url}${userData}`, { from: vm1, method: 'PUT', headers: { 'Content-Length': '0' } }))
        .status,
    ).toBe(200);
    expect(api.seen.every((s) => s.url.startsWith('/v1/metadata/'))).toBe(true);
  });
});

describe('metadata proxy secret file', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-proxy-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function started(
    api: ContractApi,
    file: string,
    records: LogRecord[],
    secretReloadSeconds = 3600,
  ): Promise<StartedProxy> {
    const proxy = await startProxyFromSettings(
      {
        listen: { host: '127.0.0.1', port: 0 },
        api: new URL(api.url),
        secretFile: file,
        cacheSeconds: 0,
        negativeCacheSeconds: 0,
        cacheEntries: 10,
        timeoutSeconds: 5,
        secretReloadSeconds,
        maxResponseBytes: 1024 * 1024,
        shutdownGraceSeconds: 1,
      },
      createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) }),
    );
    cleanups.push(() => proxy.close());
    return proxy;
  }

  it('follows a rotation without a restart: old and new accepted by the API, then the old retired', async () => {
    const api = await startContractApi([otherSecret, secret]);
    cleanups.push(() => api.close());
    api.addresses.set(vm1, 'i-one');
    const file = join(dir, 'secret');
    await writeFile(file, `${secret}\n`);
    const records: LogRecord[] = [];
    const proxy = await started(api, file, records);
    expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(200);

    await writeFile(`${file}.tmp`, `${otherSecret}\n`);
    await rename(`${file}.tmp`, file);
    expect(await proxy.reloadSecret()).toBe(true);
    api.secrets.splice(1, 1);
    expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(200);
    expect(records.some((r) => r.event === 'proxy.secret_reloaded')).toBe(true);
    expect(JSON.stringify(records)).not.toContain(otherSecret);
    expect(JSON.stringify(records)).not.toContain(secret);
  });

  it('notices a secret file replaced by rename on its own, through the directory watch', async () => {
    const api = await startContractApi([otherSecret]);
    cleanups.push(() => api.close());
    api.addresses.set(vm1, 'i-one');
    const file = join(dir, 'secret');
    await writeFile(file, `${secret}\n`);
    const records: LogRecord[] = [];
    const proxy = await started(api, file, records);
    expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(502);
    await writeFile(`${file}.new`, `${otherSecret}\n`);
    await rename(`${file}.new`, file);
    await waitFor(
      () => records.some((r) => r.event === 'proxy.secret_reloaded'),
      'the watch to reload',
      10_000,
    );
    expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(200);
  });

  it('keeps signing with the good secret when the file turns bad, and says so', async () => {
    const api = await startContractApi([secret]);
    cleanups.push(() => api.close());
    api.addresses.set(vm1, 'i-one');
    const file = join(dir, 'secret');
    await writeFile(file, secret);
    const records: LogRecord[] = [];
    const proxy = await started(api, file, records);
    await writeFile(file, 'short');
    expect(await proxy.reloadSecret()).toBe(false);
    expect((await ask(`${proxy.url}${userData}`, { from: vm1 })).status).toBe(200);
    const warning = records.find((r) => r.event === 'proxy.secret_unreadable');
    expect(warning?.reason).toMatch(/fewer than 16/);
    expect(JSON.stringify(warning)).not.toContain('short');
  });

  it('refuses to start on a missing or too short secret, naming the flag', async () => {
    const api = await startContractApi([secret]);
    cleanups.push(() => api.close());
    await expect(started(api, join(dir, 'absent'), [])).rejects.toThrow(
      /--secret-file .*absent cannot be read/,
    );
    await writeFile(join(dir, 'short'), 'abc\n');
    await expect(started(api, join(dir, 'short'), [])).rejects.toThrow(/--secret-file .*fewer than 16/);
    await writeFile(join(dir, 'spaced'), `${secret} ${otherSecret}\n`);
    await expect(started(api, join(dir, 'spaced'), [])).rejects.toThrow(/whitespace inside/);
    await writeFile(join(dir, 'comments'), '# only a comment\n\n');
    await expect(started(api, join(dir, 'comments'), [])).rejects.toThrow(/holds no secret/);
  });
});
