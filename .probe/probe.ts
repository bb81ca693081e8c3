import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseConfig } from '../shared/config.ts';
import { silentLogger } from '../shared/mirror/deps.ts';
import { keyringChecker } from '../shared/mirror/signatures.ts';
import { transferArtifact } from '../shared/mirror/worker.ts';
import { artifactUrls } from '../shared/release/layout.ts';
import { createLocalStore } from '../shared/store/index.ts';
import { loadKeyring } from '../shared/verify/keyring.ts';
import { streamDownload } from '../shared/http/fetch.ts';

const size = 512 * 1024 * 1024;
const proc = spawn(process.execPath, ['--import', 'tsx', 'local/sim-origin/main.ts', '--key-type', 'rsa4096', '--artifact', `image.bin=${size}`], { stdio: ['pipe', 'pipe', 'inherit'] });
const line = await new Promise<string>((r) => createInterface({ input: proc.stdout! }).once('line', r));
const info = JSON.parse(line);
const config = parseConfig({ channels: [{ name: 'stable', baseUrl: info.baseUrl }], artifacts: [{ name: 'image.bin' }], limits: { maxArtifactBytes: 8e9 } });
const urls = artifactUrls(config.channels[0]!, 'amd64-usr', '3510.2.8', 'image.bin');
const mode = process.argv[2] ?? 'full';
for (let round = 0; round < 3; round++) {
  const t = performance.now();
  if (mode === 'download') {
    const d = await streamDownload(urls.url, { maxBytes: 8e9, maxResumes: 1, timeoutMs: 30000, allowedOrigins: [info.url] });
    for await (const _ of d.body) { /* drain */ }
  } else {
    const keyring = await loadKeyring([info.publicKeyArmored], [info.primaryFingerprint]);
    const root = await mkdtemp(join(tmpdir(), 'probe-'));
    const store = mode === 'nostore' ? { ...createLocalStore(root), beginUpload: async () => ({ write: async () => {}, bytesWritten: 0, commit: async () => {}, abort: async () => {} }) } : createLocalStore(root);
    try {
      await transferArtifact({ v: 1, channel: 'stable', board: 'amd64-usr', version: '3510.2.8', artifact: 'image.bin', ...urls }, { store: store as never, signatures: keyringChecker(keyring), clock: () => new Date(), logger: silentLogger }, config);
    } catch (e) { console.log('err', (e as Error).message); }
  }
  console.log(mode, ((size / 1e6) / ((performance.now() - t) / 1000)).toFixed(0), 'MB/s');
}
proc.stdin!.end();
