import { execFileSync, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startSimOrigin } from '../local/sim-origin/sim-origin.ts';
import { streamDownload, fetchSmall } from '../shared/http/fetch.ts';
import { loadKeyring } from '../shared/verify/keyring.ts';
import { verifyDetached } from '../shared/verify/verify.ts';
const MiB = 1024*1024;
if (process.argv[2] === 'child') {
  const [,, , mode, url, key, fpr] = process.argv;
  const keyring = await loadKeyring([key!], [fpr!]);
  const sig = await fetchSmall(url + '.sig', { maxBytes: 65536, timeoutMs: 30000 });
  const t = performance.now();
  const d = await streamDownload(url!, { maxBytes: 1e12, maxResumes: 0, timeoutMs: 30000, chunkSize: MiB });
  let n = 0; const h = createHash('sha512');
  async function* g() { for await (const c of d.body) { n += c.byteLength; if (mode === 'hash+verify') h.update(c); yield c; } }
  if (mode === 'raw') { for await (const c of d.body) n += c.byteLength; }
  else if (mode === 'hash') { for await (const c of d.body) { n += c.byteLength; h.update(c); } }
  else await verifyDetached(g(), sig, keyring, { now: new Date(), maxClockSkewSeconds: 300 });
  console.log(mode, (n/1e6/((performance.now()-t)/1000)).toFixed(0), 'MB/s');
} else {
  const origin = await startSimOrigin({ keyType: 'rsa4096' });
  await origin.publishRelease({ channel: 'b', board: 'a', version: '1.0.0', artifacts: [{ name: 'x.bin', size: 256*MiB }] });
  const url = `${origin.baseUrl.replace('{channel}','b')}/a/1.0.0/x.bin`;
  for (const mode of ['raw', 'hash', 'verify', 'hash+verify']) {
    const out = await new Promise<string>((res) => execFile(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', mode, url, origin.publicKeyArmored, origin.primaryFingerprint], (e, so, se) => res(so + (e ? se : ''))));
    console.log(out.trim());
  }
  await origin.close();
}
