import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import type { InstanceRepository } from '../../shared/instances/types.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { freshInstanceRepository } from '../support/instance-api.ts';

const adminToken = 'admin-secret-for-base-url-tests';

/** What docs/single-machine.md promises for TLS behind a reverse proxy. */
describe('instance URLs behind a reverse proxy', () => {
  let dir: string;
  let instances: InstanceRepository;
  let putVia: (publicBaseUrl: string | undefined, id: string) => Promise<string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cldist-base-url-'));
    instances = await freshInstanceRepository();
    const deps = {
      instances,
      bodies: createLocalStore(dir),
      clock: () => new Date(),
      adminAuth: { kind: 'bearer' as const, token: adminToken },
    };
    putVia = async (publicBaseUrl, id) => {
      const app = createApiApp(
        deps,
        parseConfig({ api: publicBaseUrl === undefined ? {} : { publicBaseUrl } }),
      );
      const response = await app.request(`http://127.0.0.1:8080/v1/instances/${id}`, {
        method: 'PUT',
        headers: {
          Authorization: `Bearer ${adminToken}`,
          'Content-Type': 'application/json',
          'X-Forwarded-Host': 'attacker.example.net',
          'X-Forwarded-Proto': 'https',
        },
        body: JSON.stringify({ ignition: { ignition: { version: '3.4.0' } } }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { ignitionUrl: string }).ignitionUrl;
    };
  });

  afterAll(async () => {
    await instances?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('builds the Ignition URL from api.publicBaseUrl, whatever forwarded headers say', async () => {
    expect(await putVia('https://cldist.example.com', 'proxied')).toMatch(
      /^https:\/\/cldist\.example\.com\/v1\/instances\/proxied\/ignition\?token=[A-Za-z0-9_-]{43}$/,
    );
  });

  it('without it, uses the request origin and never X-Forwarded-Host', async () => {
    expect(await putVia(undefined, 'direct')).toMatch(
      /^http:\/\/127\.0\.0\.1:8080\/v1\/instances\/direct\/ignition\?token=/,
    );
  });
});
