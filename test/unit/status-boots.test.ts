import { describe, expect, it } from 'vitest';
import { renderStatusPage } from '../../local/status/render.ts';
import { createRecentBoots, recentEntry } from '../../shared/boot/recent.ts';
import { emptyStatusModel } from '../support/status-model.ts';

const model = emptyStatusModel();

describe('the status page network boots section', () => {
  it('lists recent boot requests, matched or not, newest first, with MAC, outcome, instance and profile', async () => {
    const recent = createRecentBoots(2);
    const at = new Date('2026-06-01T00:00:01Z');
    recent.record(recentEntry(at, 'ipxe', { mac: '52-54-00-00-00-09', labels: {} }, { outcome: 'unknown' }));
    recent.record(
      recentEntry(
        at,
        'grub',
        { mac: '52-54-00-00-00-01', labels: { rack: '7' } },
        {
          outcome: 'boot',
          instance: 'node-<1>',
          profile: 'ram',
        },
      ),
    );
    recent.record(
      recentEntry(
        at,
        'ipxe',
        { uuid: '8a4e1c2b-0000-4000-8000-000000000001', labels: {} },
        { outcome: 'no-release', profile: 'ram' },
      ),
    );
    const list = recent.list();
    expect(list.map((b) => b.outcome)).toEqual(['no-release', 'boot']);
    const page = String(await renderStatusPage({ ...model, recentBoots: list }, 5));
    expect(page).toContain('<h2>Network boots');
    expect(page).toContain('data-mac="52-54-00-00-00-01" data-outcome="boot"');
    expect(page).toContain('node-&lt;1&gt;');
    expect(page).toContain('8a4e1c2b-0000-4000-8000-000000000001');
    expect(page).not.toContain('52-54-00-00-00-09');
  });

  it('says when no machine asked, and has no section where the runner serves no boot routes', async () => {
    expect(String(await renderStatusPage({ ...model, recentBoots: [] }, 5))).toContain(
      'No machine asked to boot since start.',
    );
    expect(String(await renderStatusPage(model, 5))).not.toContain('Network boots');
  });
});
