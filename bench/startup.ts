import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSimOrigin } from '../local/sim-origin/sim-origin.ts';
import { projectRoot } from '../shared/config.ts';
import { median, mirrorOnceArgs, peakMiB, runCommand } from './support.ts';

/**
 * Start-up cost of the CLI: each command run as a whole process that does nothing new, through the
 * precompiled bundle (`node bin/cldist.js`, dist/ built by `npm ci`) and through the TypeScript sources
 * (`node --import tsx local/cli.ts`, how the CLI started before the bundle), round-robin in the same run so
 * both meet the same load. `node -e ''` is the floor: Node's own start.
 *
 * - `mirror --once`: a simulated origin on loopback whose one release the data dir already holds.
 * - `verify`: a 64 KiB file and its detached signature from that origin.
 * - `instances get`: against a loopback stub that answers 404 (exit 2), so the command's whole path runs.
 *
 * Wall time and peak RSS (GNU time) per run; medians over `--rounds`.
 *
 *   npx tsx bench/startup.ts [--rounds 5]
 */
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds <= 0) throw new Error('--rounds takes a positive integer');

/** A command under GNU time (peak RSS), from the repository, with at most a minute to finish. */
const run = (args: string[]) =>
  runCommand('/usr/bin/time', ['-f', '%M', ...args], {
    cwd: projectRoot,
    timeoutMs: 60_000,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });

const board = 'amd64-usr';
const artifact = 'flatcar_production_pxe.vmlinuz';
const origin = await startSimOrigin();
const stub = createServer((_request, response) => {
  response.writeHead(404, { 'content-type': 'application/json' });
  response.end('{"error":"not-found","message":"no instance bench-node"}');
});
await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
const dir = await mkdtemp(join(tmpdir(), 'cldist-startup-'));

try {
  await origin.publishRelease({
    channel: 'stable',
    board,
    version: '4081.2.0',
    artifacts: [{ name: artifact, size: 64 * 1024 }],
  });
  const keyFile = join(dir, 'origin.asc');
  await writeFile(keyFile, origin.publicKeyArmored);
  const fileUrl = `${origin.url}/stable/${board}/4081.2.0/${artifact}`;
  const file = join(dir, artifact);
  await writeFile(file, new Uint8Array(await (await fetch(fileUrl)).arrayBuffer()));
  await writeFile(`${file}.sig`, new Uint8Array(await (await fetch(`${fileUrl}.sig`)).arrayBuffer()));

  const commands: Record<string, string[]> = {
    'mirror --once': mirrorOnceArgs({
      originUrl: origin.url,
      board,
      artifact,
      keyFile,
      dataDir: join(dir, 'data'),
    }),
    verify: ['verify', file, '--keyring', keyFile],
    'instances get': [
      'instances',
      'get',
      'bench-node',
      '--api',
      `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
      '--auth',
      'token',
      '--token',
      'bench-token',
    ],
  };
  const ways: Record<string, string[]> = {
    bundle: [process.execPath, 'bin/cldist.js'],
    'tsx sources': [process.execPath, '--import', 'tsx', 'local/cli.ts'],
  };

  // The first mirror run does the work; every measured run after it finds nothing new. It also builds
  // the bundle if a source changed since `npm ci`, so no measured run pays for that.
  const first = await run([...(ways.bundle ?? []), ...(commands['mirror --once'] ?? [])]);
  if (first.code !== 0) throw new Error(`the priming mirror run failed (${first.code}):\n${first.stderr}`);

  const cases = [
    { label: "node -e ''", args: [process.execPath, '-e', ''], expect: 0 },
    ...Object.entries(commands).flatMap(([command, args]) =>
      Object.entries(ways).map(([way, prefix]) => ({
        label: `${command} (${way})`,
        args: [...prefix, ...args],
        expect: command === 'instances get' ? 2 : 0,
      })),
    ),
  ];
  const seconds = new Map<string, number[]>(cases.map((c) => [c.label, []]));
  const rss = new Map<string, number[]>(cases.map((c) => [c.label, []]));
  for (let round = 0; round < rounds; round++) {
    for (const { label, args, expect } of cases) {
      const result = await run(args);
      if (result.code !== expect) {
        throw new Error(`${label} exited ${result.code}, expected ${expect}:\n${result.stderr}`);
      }
      seconds.get(label)?.push(result.seconds);
      rss.get(label)?.push(peakMiB(result.stderr));
    }
  }

  process.stdout.write(`cldist start-up, Node ${process.version}, ${rounds} rounds, medians\n\n`);
  process.stdout.write('| run | wall s | peak RSS MiB |\n|---|---|---|\n');
  for (const { label } of cases) {
    const s = median(seconds.get(label) ?? []);
    const m = median(rss.get(label) ?? []);
    process.stdout.write(`| ${label} | ${s.toFixed(3)} | ${m.toFixed(0)} |\n`);
  }
  process.stdout.write('\n');
  for (const command of Object.keys(commands)) {
    const bundled = median(seconds.get(`${command} (bundle)`) ?? []);
    const sources = median(seconds.get(`${command} (tsx sources)`) ?? []);
    process.stdout.write(`${command}: the bundle starts ${(sources / bundled).toFixed(2)}× faster\n`);
  }
} finally {
  await origin.close();
  stub.close();
  await rm(dir, { recursive: true, force: true });
}
