import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { type ApiRoute, apiPaths, apiRoutes, honoPath } from '../../shared/api-routes.ts';
import { createDynamoBootStore } from '../../shared/boot/store.ts';
import { parseConfig } from '../../shared/config.ts';
import { createDynamoInstanceRepository } from '../../shared/instances/repository.ts';
import { createDynamoFleetLedger } from '../../shared/ledger/fleet.ts';
import { createDynamoLedger } from '../../shared/ledger/ledger.ts';
import { createLocalStore } from '../../shared/store/local-store.ts';
import { createUpdateService } from '../../shared/update/wiring.ts';
import { channelSources } from '../support/update-fixtures.ts';

const bodiesDir = mkdtempSync(join(tmpdir(), 'cldist-api-routes-'));
afterAll(() => rmSync(bodiesDir, { recursive: true, force: true }));

/**
 * The routes the API app registers with every optional part present (release admin, proxied metadata,
 * bare-metal boot, fleet).
 * Listing routes sends no request, so the clients point at a closed port and are never called.
 */
function registeredRoutes(): { method: string; path: string }[] {
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' }),
  );
  const ledger = createDynamoLedger(doc, 'unused');
  const app = createApiApp(
    {
      instances: createDynamoInstanceRepository(doc, { table: 'unused' }),
      bodies: createLocalStore(bodiesDir),
      clock: () => new Date('2026-12-01T00:00:00Z'),
      adminAuth: { kind: 'bearer', token: 'a'.repeat(32) },
      releases: { ledger, jobs: { sendJobs: async () => {} } },
      proxySecrets: async () => [],
      boot: { store: createDynamoBootStore(doc, 'unused'), releases: createDynamoLedger(doc, 'unused') },
      fleet: {
        recorder: { record: () => {} },
        ledger: createDynamoFleetLedger(doc, 'unused', { retentionDays: 1, snapshotRetentionDays: 1 }),
        clock: () => new Date('2026-12-01T00:00:00Z'),
      },
      updates: createUpdateService(
        { groups: ledger, current: ledger, clock: () => new Date('2026-12-01T00:00:00Z') },
        { mirrorBaseUrl: 'http://127.0.0.1:9/mirror', sources: channelSources('stable') },
      ),
    },
    parseConfig({}),
  );
  const seen = new Map(app.routes.map((r) => [`${r.method} ${r.path}`, { method: r.method, path: r.path }]));
  return [...seen.values()];
}

const gatewayRoutes: ApiRoute[] = Object.values(apiRoutes).flat();

/**
 * Whether a gateway route forwards this app route: same path and method, or a greedy path above it. API
 * Gateway routes a path with a trailing slash as the same path without it.
 */
function forwards(gateway: ApiRoute, app: { method: string; path: string }): boolean {
  const path = honoPath(gateway.path);
  const greedy = path.endsWith('/*') ? path.slice(0, -1) : undefined;
  const appPath = app.path.length > 1 ? app.path.replace(/\/$/, '') : app.path;
  const pathMatches = path === appPath || (greedy !== undefined && app.path.startsWith(greedy));
  return pathMatches && (app.method === 'ALL' || app.method === gateway.method);
}

describe('the API routes the gateway and the app share', () => {
  it('writes API Gateway paths as Hono paths, parameters and the greedy path included', () => {
    expect(honoPath(apiPaths.releaseRetry)).toBe('/v1/releases/:source/:channel/:board/:version/retry');
    expect(honoPath(apiPaths.metadata)).toBe('/v1/metadata/*');
    expect(honoPath(apiPaths.releases)).toBe('/v1/releases');
    expect(() => honoPath('/v1/instances/{id}.json')).toThrow(
      /segment "\{id\}\.json" is not a plain word or one \{parameter\}/,
    );
  });

  it('has the app serve every route the gateway forwards', () => {
    const registered = registeredRoutes();
    const missing = gatewayRoutes.filter(
      (gateway) =>
        !registered.some(
          (app) =>
            app.path === honoPath(gateway.path) && (app.method === gateway.method || app.method === 'ALL'),
        ),
    );
    expect(missing).toEqual([]);
  });

  it('has the gateway forward every route the app serves, so none answers 404 only on AWS', () => {
    const unreachable = registeredRoutes().filter((app) => !gatewayRoutes.some((g) => forwards(g, app)));
    expect(unreachable).toEqual([]);
    // The check itself: a route outside every gateway path is reported.
    expect(gatewayRoutes.some((g) => forwards(g, { method: 'GET', path: '/v1/status' }))).toBe(false);
    expect(gatewayRoutes.some((g) => forwards(g, { method: 'POST', path: '/v1/instances/:id' }))).toBe(false);
  });
});
