import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { FleetSnapshot } from '../../shared/ledger/fleet.ts';
import type { FleetStatusView } from './fleet.ts';

type Fragment = HtmlEscapedString | Promise<HtmlEscapedString>;

const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
/** Versions beyond the newest few are drawn as one band, so the plot stays readable. */
const maxBands = palette.length - 1;
const otherBand = 'older';

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0 && !Number.isNaN(d)) return d;
  }
  return a.localeCompare(b);
}

/** The bands, oldest version at the bottom: the newest `maxBands` versions, the rest as `older`. */
function bandsOf(snapshots: FleetSnapshot[]): string[] {
  const versions = new Set<string>();
  for (const snapshot of snapshots)
    for (const version of Object.keys(snapshot.byVersion)) versions.add(version);
  const sorted = [...versions].sort(compareVersions);
  if (sorted.length <= maxBands) return sorted;
  return [otherBand, ...sorted.slice(-maxBands)];
}

function countIn(snapshot: FleetSnapshot, band: string, bands: string[]): number {
  if (band !== otherBand) return snapshot.byVersion[band] ?? 0;
  return Object.entries(snapshot.byVersion)
    .filter(([version]) => !bands.includes(version))
    .reduce((sum, [, n]) => sum + n, 0);
}

const hhmm = (iso: string) => `${iso.slice(11, 16)} UTC`;

/**
 * Active machines per version over time, stacked: a rollout is a band that grows while the one below it
 * shrinks, and a stalled rollout is a band that stops growing, which a glance shows and a table does not.
 */
export function versionPlot(snapshots: FleetSnapshot[]): Fragment {
  if (snapshots.length < 2) {
    return html`<p class="fleet-plot-empty">The plot of versions over time appears after the second count.</p>`;
  }
  const width = 720;
  const height = 200;
  const left = 44;
  const bottom = 22;
  const plotW = width - left - 10;
  const plotH = height - bottom - 8;
  const t0 = Date.parse(snapshots[0]?.at ?? '');
  const t1 = Date.parse(snapshots[snapshots.length - 1]?.at ?? '');
  const span = Math.max(t1 - t0, 1);
  const max = Math.max(1, ...snapshots.map((s) => Object.values(s.byVersion).reduce((a, b) => a + b, 0)));
  const x = (at: string) => (left + ((Date.parse(at) - t0) / span) * plotW).toFixed(1);
  const y = (n: number) => (8 + plotH - (n / max) * plotH).toFixed(1);
  const bands = bandsOf(snapshots);
  const below = snapshots.map(() => 0);
  const areas = bands.map((band, i) => {
    const lower = [...below];
    const upper = snapshots.map((s, j) => (below[j] ?? 0) + countIn(s, band, bands));
    upper.forEach((n, j) => {
      below[j] = n;
    });
    const top = snapshots.map((s, j) => `${x(s.at)},${y(upper[j] ?? 0)}`);
    const base = snapshots.map((s, j) => `${x(s.at)},${y(lower[j] ?? 0)}`).reverse();
    const latest = countIn(snapshots[snapshots.length - 1] as FleetSnapshot, band, bands);
    return {
      band,
      colour: palette[i % palette.length] ?? '#999',
      points: [...top, ...base].join(' '),
      latest,
    };
  });
  return html`<figure class="fleet-plot">
  <svg role="img" aria-label="Active machines per version over time" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">
    <line x1="${left}" y1="${y(0)}" x2="${width - 10}" y2="${y(0)}" stroke="#999"/>
    <text x="${left - 6}" y="${y(max)}" text-anchor="end" font-size="11" dominant-baseline="middle">${max}</text>
    <text x="${left - 6}" y="${y(0)}" text-anchor="end" font-size="11" dominant-baseline="middle">0</text>
    ${areas.map((a) => html`<polygon data-version="${a.band}" points="${a.points}" fill="${a.colour}" fill-opacity="0.8"/>`)}
    <text x="${left}" y="${height - 6}" font-size="11">${hhmm(snapshots[0]?.at ?? '')}</text>
    <text x="${width - 10}" y="${height - 6}" font-size="11" text-anchor="end">${hhmm(snapshots[snapshots.length - 1]?.at ?? '')}</text>
  </svg>
  <figcaption>${[...areas]
    .reverse()
    .map(
      (a) =>
        html`<span class="legend"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${a.colour}"/></svg> ${a.band} (${a.latest})</span> `,
    )}</figcaption>
</figure>`;
}

function countsTable(title: string, counts: Record<string, number | undefined>): Fragment {
  const entries = Object.entries(counts)
    .filter((e): e is [string, number] => e[1] !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  return html`<table class="fleet-counts" data-counts="${title}">
    <thead><tr><th>${title}</th><th>instances</th></tr></thead>
    <tbody>${entries.map(([key, n]) => html`<tr data-key="${key}"><td>${key}</td><td class="num">${n}</td></tr>`)}</tbody>
  </table>`;
}

/** The fleet section: counts per group, version and status, the plot, and the first machines (ids redacted). */
export function fleetBlock(fleet: FleetStatusView | undefined): Fragment {
  if (fleet === undefined) return html``;
  const { counts } = fleet;
  return html`<h2>Fleet</h2>
  ${
    counts === undefined
      ? html`<p>Not counted yet.</p>`
      : html`<p class="fleet-summary">${counts.active} active instances, ${counts.inactive} inactive (counted ${fleet.countedAt ?? ''}).</p>
  <div class="fleet-tables">${countsTable('group', counts.byGroup)}${countsTable('version', counts.byVersion)}${countsTable('status', counts.byStatus)}</div>`
  }
  ${versionPlot(fleet.snapshots)}
  ${
    fleet.rows.length === 0
      ? html`<p>No instance has checked in for updates.</p>`
      : html`<table class="fleet">
    <thead><tr><th>machine</th><th>group</th><th>version</th><th>status</th><th>last seen</th></tr></thead>
    <tbody>${fleet.rows.map(
      (row) => html`<tr><td><code>${row.machine}</code></td><td>${row.group}</td><td>${row.version}</td>
        <td><span class="state ${row.status}">${row.status}</span></td><td><time>${row.lastSeen}</time></td></tr>`,
    )}</tbody>
  </table>
  ${fleet.more ? html`<p class="more">The first ${fleet.rows.length} machines by id; <code>GET /v1/fleet</code> lists all, ids in full, to admins.</p>` : ''}`
  }`;
}
