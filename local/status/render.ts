import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { fleetBlock } from './fleet-render.ts';
import type { ArtifactStatus, ChannelStatus, ReleaseStatus, StatusModel } from './model.ts';

type Fragment = HtmlEscapedString | Promise<HtmlEscapedString>;

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Long fingerprints hide the part people compare; show the key ID (last 16 hex digits) with the full one on hover. */
function fingerprint(value: string | undefined): Fragment {
  if (value === undefined) return html`–`;
  return html`<code title="${value}">${value.slice(-16)}</code>`;
}

function daysUntil(iso: string, now: string): number {
  return Math.floor((Date.parse(iso) - Date.parse(now)) / 86_400_000);
}

function artifactRow(artifact: ArtifactStatus): Fragment {
  return html`<tr class="artifact" data-artifact="${artifact.name}" data-state="${artifact.state}">
    <td><code>${artifact.name}</code>${artifact.required ? '' : html` <small>(optional)</small>`}</td>
    <td><span class="state ${artifact.state}">${artifact.state}</span>${
      artifact.error === undefined ? '' : html`<div class="error">${artifact.error}</div>`
    }</td>
    <td class="num">${formatBytes(artifact.size)}</td>
    <td>${fingerprint(artifact.signer)}</td>
  </tr>`;
}

function releaseBlock(release: ReleaseStatus, model: StatusModel, channel: ChannelStatus): Fragment {
  const folder = channel.mirrorPath === '' ? '' : `${channel.mirrorPath}/`;
  const base = `${model.mirrorBaseUrl}/${folder}${channel.channel}/${channel.board}/${release.version}/`;
  return html`<details class="release" data-version="${release.version}" data-state="${release.state}" ${
    release.state === 'mirrored' ? '' : 'open'
  }>
    <summary><strong>${release.version}</strong> <span class="state ${release.state}">${release.state}</span>
      ${release.state === 'mirrored' ? html`<a href="${base}version.txt">files</a>` : ''}</summary>
    <table>
      <thead><tr><th>artifact</th><th>state</th><th>size</th><th>signer</th></tr></thead>
      <tbody>${release.artifacts.map(artifactRow)}</tbody>
    </table>
  </details>`;
}

function channelBlock(channel: ChannelStatus, model: StatusModel): Fragment {
  const mirrored = channel.releases.filter((r) => r.state === 'mirrored').map((r) => r.version);
  return html`<section class="channel" data-source="${channel.source}" data-channel="${channel.channel}" data-board="${channel.board}">
    <h2>${channel.channel} <small>${channel.board} · ${channel.source}</small></h2>
    <dl>
      <dt>latest upstream</dt><dd class="latest-upstream">${channel.latestUpstream ?? 'not seen yet'}</dd>
      <dt>current in mirror</dt><dd class="current-mirrored">${channel.currentMirrored ?? 'none yet'}</dd>
      <dt>versions mirrored</dt><dd class="versions-mirrored">${mirrored.length === 0 ? 'none yet' : mirrored.join(', ')}</dd>
      <dt>upstream</dt><dd><code>${channel.upstreamUrl}</code>${
        channel.lastCheckedAt === undefined ? '' : html` <small>checked ${channel.lastCheckedAt}</small>`
      }</dd>
    </dl>
    ${
      channel.pollError === undefined
        ? ''
        : html`<p class="poll-error">Upstream unreachable at ${channel.pollError.at}: <code>${channel.pollError.url}</code> — ${channel.pollError.cause}</p>`
    }
    ${channel.releases.map((release) => releaseBlock(release, model, channel))}
  </section>`;
}

function keysBlock(model: StatusModel): Fragment {
  if (model.signingKeys.length === 0) {
    return html`<p class="warning">No valid signing key in the keyring: nothing can be verified.</p>`;
  }
  return html`<table class="keys">
    <thead><tr><th>primary key</th><th>signing subkey</th><th>expires</th></tr></thead>
    <tbody>${model.signingKeys.map(
      (key) => html`<tr class="${key.expiringSoon ? 'expiring' : ''}">
        <td>${fingerprint(key.primaryKeyFingerprint)}</td>
        <td>${fingerprint(key.signingKeyFingerprint)}</td>
        <td class="key-expiry">${
          key.expires === undefined
            ? 'never'
            : html`${key.expires.slice(0, 10)} (in ${daysUntil(key.expires, model.generatedAt)} days)${
                key.expiringSoon ? html` <strong>import the rotated key now</strong>` : ''
              }`
        }</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

function eventsBlock(model: StatusModel): Fragment {
  if (model.events.length === 0) return html`<p>No events yet.</p>`;
  return html`<ol class="events">${model.events.map(
    (event) => html`<li data-event="${event.event}"><time>${event.at}</time> <strong>${event.event}</strong>
      ${event.channel}/${event.board}${event.version === undefined ? '' : ` ${event.version}`}${
        event.artifact === undefined ? '' : html` <code>${event.artifact}</code>`
      }</li>`,
  )}</ol>`;
}

/** Refused fetches since start: a climbing count is someone guessing ids or tokens. */
function refusedLine(model: StatusModel): Fragment {
  const refused = Object.entries(model.refusedFetches ?? {}).filter(([, count]) => count > 0);
  if (refused.length === 0) return html``;
  return html`<p class="refused">Config fetches refused since start: ${refused
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([reason, count], i) =>
        html`${i === 0 ? '' : ', '}<span data-reason="${reason}">${reason} ${count}</span>`,
    )}.</p>`;
}

function instancesBlock(model: StatusModel): Fragment {
  const list = model.instances;
  if (list === undefined) return html``;
  if (list.rows.length === 0) {
    return html`<h2>Instances</h2><p>No instances registered.</p>${refusedLine(model)}`;
  }
  return html`<h2>Instances</h2>${refusedLine(model)}
  <table class="instances">
    <thead><tr><th>id</th><th>addresses</th><th>hostname</th><th>config</th><th>last fetch</th></tr></thead>
    <tbody>${list.rows.map(
      (row) => html`<tr data-instance="${row.id}">
        <td><code>${row.id}</code></td>
        <td class="addresses">${row.addresses.length === 0 ? '–' : row.addresses.join(', ')}</td>
        <td class="hostname">${row.hostname ?? '–'}</td>
        <td class="kind">${row.kind}</td>
        <td class="last-fetch">${
          row.lastFetch === undefined
            ? 'never'
            : html`<time>${row.lastFetch.at}</time> ${row.lastFetch.family}${
                row.lastFetch.path === undefined ? '' : html` <code>${row.lastFetch.path}</code>`
              } from ${row.lastFetch.sourceIp} (${row.lastFetch.outcome})`
        }</td>
      </tr>`,
    )}</tbody>
  </table>
  ${list.more ? html`<p class="more">The first ${list.limit} instances by id; <code>cldist instances get ID</code> shows any one.</p>` : ''}`;
}

/** Machines that asked to network-boot lately: an unknown MAC here is a machine waiting to be registered. */
function bootsBlock(model: StatusModel): Fragment {
  const boots = model.recentBoots;
  if (boots === undefined) return html``;
  if (boots.length === 0) return html`<h2>Network boots</h2><p>No machine asked to boot since start.</p>`;
  return html`<h2>Network boots <small>newest first, since start</small></h2>
  <table class="boots">
    <thead><tr><th>time</th><th>loader</th><th>mac</th><th>uuid</th><th>outcome</th><th>instance</th><th>profile</th></tr></thead>
    <tbody>${boots.map(
      (boot) => html`<tr data-mac="${boot.mac ?? ''}" data-outcome="${boot.outcome}">
        <td><time>${boot.at}</time></td><td>${boot.loader}</td>
        <td><code>${boot.mac ?? '–'}</code></td><td class="uuid">${boot.uuid ?? '–'}</td>
        <td class="outcome">${boot.outcome}</td>
        <td class="instance">${boot.instance ?? '–'}</td><td class="profile">${boot.profile ?? '–'}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

function diskBlock(model: StatusModel): Fragment {
  const disk = model.disk;
  if (disk?.paused !== true) return html``;
  return html`<p class="warning disk-paused" role="alert">Mirroring is paused: the data dir's filesystem has ${
    disk.freeMiB ?? '?'
  } MiB free, below the ${disk.minFreeMiB} MiB threshold (worker.minFreeDiskMiB), since ${
    disk.pausedAt ?? '?'
  }. Instance configs are still served. Free space and mirroring resumes by itself.</p>`;
}

const style = `
body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b;max-width:70rem}
h1 small,h2 small{color:#666;font-weight:normal}
section.channel{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
dl{display:grid;grid-template-columns:11rem 1fr;gap:.1rem .5rem;margin:.5rem 0}dt{color:#555}dd{margin:0}
table{border-collapse:collapse;margin:.3rem 0 .8rem}td,th{padding:.15rem .6rem;text-align:left;border-bottom:1px solid #eee}
td.num{text-align:right;white-space:nowrap}.state{padding:0 .4rem;border-radius:3px;font-size:.85em}
.verified,.mirrored{background:#d7f5dc}.pending,.in-progress{background:#eef}.missing{background:#fff1c2}
form.logout{float:right;margin-top:-3rem}.failed{background:#fcd4d4}.awaiting-trust{background:#fde9b8}.error{color:#a00;font-size:.85em}.poll-error,.warning{color:#a00}
tr.expiring{background:#fff1c2}.fleet-tables{display:flex;gap:1.5rem;flex-wrap:wrap}.legend{margin-right:.8rem;white-space:nowrap}.state.complete{background:#d7f5dc}.state.error{background:#fcd4d4}
.events{font-size:.9em}summary{cursor:pointer;margin:.2rem 0}
`;

/** The status page: plain HTML that reloads itself, so it needs no build step and works with scripts off. */
export function renderStatusPage(model: StatusModel, refreshSeconds: number, nonce = ''): Fragment {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="${refreshSeconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cldist status</title><style nonce="${nonce}">${style}</style></head>
<body>
<h1>cldist <small>${model.demo ? 'demo (simulated origin, demo key)' : 'release mirror'}</small></h1>
<form class="logout" method="post" action="/logout"><button type="submit">Sign out</button></form>
<p>Updated ${model.generatedAt}. Transfers running: <span class="in-flight">${model.worker.inFlight}</span> of ${model.worker.concurrency}.
Mirror base URL: <code>${model.mirrorBaseUrl}/{source folder}/{channel}/{board}</code>. Same data as JSON: <a href="/v1/status">/v1/status</a>.</p>
${diskBlock(model)}
<h2>Channels</h2>
${model.channels.map((channel) => channelBlock(channel, model))}
<h2>Signing keys</h2>
${keysBlock(model)}
<p><small>A warning is raised ${model.keyWarningDays} days before the newest signing subkey expires.</small></p>
${instancesBlock(model)}
${bootsBlock(model)}
${fleetBlock(model.fleet)}
<h2>Recent events</h2>
${eventsBlock(model)}
</body></html>`;
}
