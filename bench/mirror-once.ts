import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { artifactSeed, generatedBytes } from '../local/sim-origin/content.ts';
import { startSimOrigin } from '../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../shared/config.ts';
import { median, mirrorOnceArgs, peakAndCpu, runCommand } from './support.ts';

/**
 * The whole command against gpg: `cldist mirror --once` as a cron job runs it (a child process through
 * `bin/cldist.js`, start-up, stand-ins, poll, download, one-pass verify and store, finalize, exit) mirroring
 * one artifact from the sim origin over loopback, then `gpg --verify` of the file it stored, in the same
 * round. The order alternates round by round, so a change of load on this shared machine hits both.
 * Every cldist run starts from an empty data dir, so each one mirrors the whole artifact.
 *
 * Prints wall-time medians, the speed-up (gpg's median over cldist's, and the median of the per-round
 * ratios), the CPU seconds each side used (user + system: what a run costs whatever else the machine is
 * doing), the CPU the origin spent serving, peak RSS, and the load average (`uptime`) before and after.
 *
 * `--origin memory` (the default) has the sim origin serve real bytes from memory, as a release server
 * serves a hot file from its page cache. `--origin generated` has it make the bytes for every request
 * (AES-CTR, as `bench/transfer.ts` does), which no real server does and which costs CPU on the same cores
 * as the mirror: the origin CPU column shows how much.
 *
 *   npm run bench:mirror-once -- [--size-mib 1024] [--rounds 3] [--origin memory|generated]
 *
 * CLDIST_BENCH_PROF=DIR writes V8 CPU profiles of each cldist run into DIR.
 */
const MiB = 1024 * 1024;
const board = 'amd64-usr';
const artifact = 'flatcar_production_image.bin';
const version = '4081.2.0';

/** Every command runs from the repository, as an operator's cron job would, and is stopped after 10 minutes. */
const run = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  runCommand(command, args, { cwd: projectRoot, env, timeoutMs: 600_000 });

interface Measured {
  seconds: number;
  rss: number;
  cpu: number;
  /** CPU seconds this process spent serving the artifact during the run. */
  originCpu?: number;
}

/** Where the run stored the artifact: under the source's mirror path, which the default config names. */
async function storedFile(mirrorRoot: string): Promise<string> {
  const suffix = join('stable', board, version, artifact);
  const found = (await readdir(mirrorRoot, { recursive: true })).find((path) => path.endsWith(suffix));
  if (found === undefined) throw new Error(`cldist stored no ${suffix} under ${mirrorRoot}`);
  return join(mirrorRoot, found);
}

/** The sim origin's pseudo-random bytes, made once, so serving them costs the socket copy only. */
function inMemory(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const chunk of generatedBytes(artifactSeed(artifact, version), 0, size)) {
    offset += chunk.copy(bytes, offset);
  }
  return bytes;
}

async function uptime(): Promise<string> {
  return (await run('uptime', [])).stdout.trim();
}

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
    origin: { type: 'string', default: 'memory' },
  },
});
if (values.origin !== 'memory' && values.origin !== 'generated') {
  throw new Error('--origin is memory or generated');
}
const sizeMiB = Number(values['size-mib']);
const rounds = Number(values.rounds);
if (!Number.isInteger(sizeMiB) || sizeMiB <= 0 || !Number.isInteger(rounds) || rounds <= 0) {
  throw new Error('--size-mib and --rounds take positive integers');
}

const work = await mkdtemp(join(tmpdir(), 'cldist-bench-mirror-once-'));
const origin = await startSimOrigin({ keyType: 'rsa4096' });
try {
  const keyFile = join(work, 'origin.asc');
  await writeFile(keyFile, origin.publicKeyArmored);
  const gnupg = join(work, 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  const imported = await run('gpg', ['--homedir', gnupg, '--batch', '--import', keyFile]);
  if (imported.code !== 0) throw new Error(`gpg --import failed: ${imported.stderr}`);
  process.stderr.write(
    `publishing ${sizeMiB} MiB (RSA-4096 signature), origin serving from ${values.origin}…\n`,
  );
  await origin.publishRelease({
    channel: 'stable',
    board,
    version,
    artifacts: [
      values.origin === 'memory'
        ? { name: artifact, content: inMemory(sizeMiB * MiB) }
        : { name: artifact, size: sizeMiB * MiB },
    ],
  });
  // A stale bundle would be rebuilt by the first measured run: build it now.
  const warm = await run(process.execPath, ['bin/cldist.js', '--version']);
  if (warm.code !== 0) throw new Error(`cldist --version failed: ${warm.stderr}`);

  const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const profile = process.env.CLDIST_BENCH_PROF;
  const mirrorArgs = (dataDir: string) => [
    '-f',
    '%M %U %S',
    process.execPath,
    ...(profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile]),
    'bin/cldist.js',
    ...mirrorOnceArgs({ originUrl: origin.url, board, artifact, keyFile, dataDir }),
  ];
  /** The file gpg verifies: the one the first cldist run stored, read from the page cache. */
  const keptDataDir = join(work, 'data-kept');
  let file = '';

  const cldist = async (round: number) => {
    const dataDir = round === 0 ? keptDataDir : join(work, `data-${round}`);
    const before = process.cpuUsage();
    const result = await run('/usr/bin/time', mirrorArgs(dataDir), env);
    const served = process.cpuUsage(before);
    const done = result.stdout.includes('"event":"mirror.done","ok":true');
    if (result.code !== 0 || !done) {
      throw new Error(`cldist mirror --once failed (exit ${result.code}):\n${result.stderr}`);
    }
    if (round > 0) await rm(dataDir, { recursive: true, force: true });
    else file = await storedFile(join(dataDir, 'mirror'));
    const originCpu = (served.user + served.system) / 1e6;
    return { seconds: result.seconds, ...peakAndCpu(result.stderr), originCpu };
  };
  const gpg = async () => {
    const result = await run('/usr/bin/time', [
      '-f',
      '%M %U %S',
      'gpg',
      '--homedir',
      gnupg,
      '--batch',
      '--verify',
      `${file}.sig`,
      file,
    ]);
    if (result.code !== 0) throw new Error(`gpg --verify failed: ${result.stderr}`);
    return { seconds: result.seconds, ...peakAndCpu(result.stderr) };
  };

  const loadBefore = await uptime();
  const ours: Measured[] = [];
  const theirs: Measured[] = [];
  for (let round = 0; round < rounds; round++) {
    // Round 0 must run cldist first (it stores gpg's file); later rounds alternate.
    if (round % 2 === 0) {
      ours.push(await cldist(round));
      theirs.push(await gpg());
    } else {
      theirs.push(await gpg());
      ours.push(await cldist(round));
    }
    const last = round;
    process.stderr.write(
      `round ${round + 1}: cldist ${ours[last]?.seconds.toFixed(2)} s, gpg ${theirs[last]?.seconds.toFixed(2)} s\n`,
    );
  }
  const loadAfter = await uptime();

  const ratios = ours.map((o, i) => (theirs[i]?.seconds ?? Number.NaN) / o.seconds);
  const oursMedian = median(ours.map((o) => o.seconds));
  const theirsMedian = median(theirs.map((t) => t.seconds));
  console.log(
    `\ncldist mirror --once vs gpg --verify, ${sizeMiB} MiB, origin from ${values.origin}, ${rounds} rounds, Node ${process.version}`,
  );
  console.log(`load before: ${loadBefore}`);
  console.log(`load after:  ${loadAfter}\n`);
  console.log(
    '| run | median wall s | MB/s | median CPU s (user+sys) | origin CPU s | peak RSS MiB (max) |\n' +
      '|---|---:|---:|---:|---:|---:|',
  );
  for (const [label, list, med] of [
    ['cldist mirror --once (whole command)', ours, oursMedian],
    ['gpg --verify (file in page cache)', theirs, theirsMedian],
  ] as const) {
    const rss = Math.max(...list.map((r) => r.rss));
    const cpu = median(list.map((r) => r.cpu));
    const served = list.flatMap((r) => (r.originCpu === undefined ? [] : [r.originCpu]));
    const originCpu = served.length === 0 ? '–' : median(served).toFixed(2);
    console.log(
      `| ${label} | ${med.toFixed(2)} | ${((sizeMiB * MiB) / 1e6 / med).toFixed(0)} | ${cpu.toFixed(2)} | ${originCpu} | ${rss.toFixed(0)} |`,
    );
  }
  console.log(
    `\ncldist is ${(theirsMedian / oursMedian).toFixed(2)}× as fast as gpg (ratio of medians); ` +
      `per-round gpg/cldist: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}×)`,
  );
} finally {
  await origin.close();
  await rm(work, { recursive: true, force: true });
}
