import { performance } from 'node:perf_hooks';
import { validateIgnition } from '../shared/instances/ignition.ts';

/**
 * Cost of validating an Ignition config at upload (`PUT /v1/instances/{id}`), per config, for a typical
 * small config and a large one (hundreds of files and units). The peer is `JSON.parse` of the same body,
 * which every upload pays anyway: the ratio says how much validation adds to it.
 *
 *   npx tsx bench/ignition-validation.ts [--rounds 7] [--ms 400]
 */
const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  const value = at < 0 ? undefined : Number(args[at + 1]);
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
};
const rounds = option('rounds', 7);
const windowMs = option('ms', 400);

const hash = `sha512-${'c'.repeat(128)}`;

function smallConfig(): unknown {
  return {
    ignition: { version: '3.4.0', config: { merge: [{ source: 'https://example.org/base.ign' }] } },
    storage: {
      files: [
        { path: '/etc/hostname', mode: 420, overwrite: true, contents: { source: 'data:,node-1%0A' } },
        { path: '/etc/motd', contents: { source: 'data:text/plain;base64,aGVsbG8K' } },
      ],
      links: [{ path: '/etc/localtime', target: '/usr/share/zoneinfo/UTC' }],
    },
    systemd: {
      units: [{ name: 'app.service', enabled: true, contents: '[Service]\nExecStart=/bin/true\n' }],
    },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: ['ssh-ed25519 AAAA core@example'] }] },
  };
}

function largeConfig(): unknown {
  const files = Array.from({ length: 400 }, (_, i) => ({
    path: `/etc/app/conf-${i}.d/file-${i}.conf`,
    mode: 0o644,
    user: { name: 'core' },
    contents: {
      source: `data:;base64,${Buffer.from(`setting-${i}=value\n`.repeat(8)).toString('base64')}`,
      verification: { hash },
    },
  }));
  const units = Array.from({ length: 100 }, (_, i) => ({
    name: `worker-${i}.service`,
    enabled: true,
    contents: `[Unit]\nDescription=worker ${i}\n[Service]\nExecStart=/usr/bin/worker --id ${i}\n`,
    dropins: [{ name: 'limits.conf', contents: '[Service]\nLimitNOFILE=65536\n' }],
  }));
  return {
    ignition: { version: '3.4.0' },
    storage: {
      disks: [{ device: '/dev/sdb', partitions: [{ label: 'data', number: 1, sizeMiB: 0 }] }],
      filesystems: [{ device: '/dev/disk/by-partlabel/data', format: 'xfs', path: '/var/data' }],
      files,
      directories: Array.from({ length: 100 }, (_, i) => ({ path: `/var/lib/app-${i}`, mode: 0o755 })),
    },
    systemd: { units },
    passwd: { users: Array.from({ length: 20 }, (_, i) => ({ name: `user${i}`, groups: ['wheel'] })) },
  };
}

/** Operations per second of `fn` over one timing window. */
function rate(fn: () => void): number {
  let count = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < windowMs) {
    fn();
    count += 1;
    elapsed = performance.now() - started;
  }
  return (count * 1000) / elapsed;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

for (const [label, config] of [
  ['small (2 files, 1 unit)', smallConfig()],
  ['large (400 files, 100 units)', largeConfig()],
] as const) {
  const body = JSON.stringify(config);
  const check = validateIgnition(JSON.parse(body), { allowLegacy: false });
  if (check.errors.length > 0) throw new Error(`bench config is invalid: ${JSON.stringify(check.errors)}`);
  const validations: number[] = [];
  const parses: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const parsed = JSON.parse(body);
    validations.push(rate(() => validateIgnition(parsed, { allowLegacy: false })));
    parses.push(rate(() => JSON.parse(body)));
  }
  const validate = median(validations);
  const parse = median(parses);
  process.stdout.write(
    `${label}, ${body.length} bytes: validate ${(1e6 / validate).toFixed(1)} µs/config ` +
      `(${validate.toFixed(0)}/s), JSON.parse ${(1e6 / parse).toFixed(1)} µs ` +
      `(${parse.toFixed(0)}/s); validate/parse time ${(parse / validate).toFixed(2)}× (median of ${rounds})\n`,
  );
}
