import { describe, expect, it } from 'vitest';
import { listInstanceRows } from '../../local/status/instances.ts';
import { renderStatusPage } from '../../local/status/render.ts';
import { emptyStatusModel } from '../support/status-model.ts';

const model = emptyStatusModel();

describe('the status page instances section', () => {
  it('lists each instance with addresses, hostname, kind and last fetch, escaped', async () => {
    const page = String(
      await renderStatusPage(
        {
          ...model,
          instances: {
            limit: 1,
            more: true,
            rows: [
              {
                id: 'vm-1',
                addresses: ['10.0.0.1', 'fe80::1'],
                hostname: '<b>x</b>',
                kind: 'ignition',
                lastFetch: {
                  at: '2026-06-01T00:00:01Z',
                  family: 'openstack',
                  path: '/openstack/latest/user_data',
                  sourceIp: '10.0.0.1',
                  outcome: 'served',
                },
              },
            ],
          },
        },
        5,
      ),
    );
    expect(page).toContain('<tr data-instance="vm-1">');
    expect(page).toContain('10.0.0.1, fe80::1');
    expect(page).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(page).toMatch(
      /openstack <code>\/openstack\/latest\/user_data<\/code> from 10\.0\.0\.1 \(served\)/,
    );
    expect(page).toContain('The first 1 instances by id');
  });

  it('says when there are none, and has no section when the runner serves no instances', async () => {
    expect(
      String(await renderStatusPage({ ...model, instances: { limit: 50, more: false, rows: [] } }, 5)),
    ).toContain('No instances registered.');
    expect(String(await renderStatusPage(model, 5))).not.toContain('<h2>Instances</h2>');
  });

  it('shows a reserved instance (no config yet) as reserved, with its pending fetch', async () => {
    const base = { etag: '', bodyKey: '', size: 0, oneTime: false, createdAt: 'x', updatedAt: 'x' };
    const list = await listInstanceRows(
      {
        flush: async () => undefined,
        list: async () => ({
          records: [
            { ...base, id: 'early', kind: 'ignition', tokenHash: 'h', reservedUntil: '2026-06-01T01:00:00Z' },
            { ...base, id: 'ready', kind: 'cloud-config', tokenHash: 'h' },
          ],
        }),
        listAudit: async (id) =>
          id === 'early'
            ? [
                {
                  at: 'x',
                  route: 'ignition',
                  family: 'token',
                  sourceIp: '10.0.0.2',
                  userAgent: '',
                  outcome: 'pending',
                },
              ]
            : [],
      },
      10,
    );
    expect(list.rows.map((row) => [row.id, row.kind, row.lastFetch?.outcome])).toEqual([
      ['early', 'reserved', 'pending'],
      ['ready', 'cloud-config', undefined],
    ]);
  });

  it('counts refused config fetches by reason, escaped, and says nothing while there are none', async () => {
    const counted = String(
      await renderStatusPage(
        {
          ...model,
          instances: { limit: 50, more: false, rows: [] },
          refusedFetches: { 'wrong-token': 3, 'unknown-instance': 12, '<i>odd</i>': 1, expired: 0 },
        },
        5,
      ),
    );
    expect(counted).toContain(
      'Config fetches refused since start: <span data-reason="&lt;i&gt;odd&lt;/i&gt;">&lt;i&gt;odd&lt;/i&gt; 1</span>, <span data-reason="unknown-instance">unknown-instance 12</span>, <span data-reason="wrong-token">wrong-token 3</span>.',
    );
    expect(counted).not.toContain('expired 0');
    const none = String(
      await renderStatusPage(
        { ...model, instances: { limit: 50, more: false, rows: [] }, refusedFetches: {} },
        5,
      ),
    );
    expect(none).not.toContain('refused since start');
  });
});
