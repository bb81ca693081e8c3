import fc from 'fast-check';

const sha512 = 'b'.repeat(128);

/** A config that uses every type of field the spec version has; it must validate with no issue. */
export function richConfig(version: string): Record<string, unknown> {
  const minor = Number(version.split('.')[1]);
  const since = (m: number, fields: Record<string, unknown>) => (minor >= m ? fields : {});
  return {
    ignition: {
      version,
      config: {
        merge: [
          {
            source: 'https://example.org/base.ign',
            verification: { hash: `sha512-${sha512}` },
            ...since(1, { httpHeaders: [{ name: 'X-Node', value: 'n1' }], compression: 'gzip' }),
          },
        ],
      },
      timeouts: { httpResponseHeaders: 10, httpTotal: 60 },
      security: { tls: { certificateAuthorities: [{ source: 'data:,-----BEGIN%20CERTIFICATE-----' }] } },
      ...since(1, { proxy: { httpProxy: 'http://proxy.example.org:3128', noProxy: ['example.org'] } }),
    },
    storage: {
      disks: [
        {
          device: '/dev/sda',
          wipeTable: false,
          partitions: [
            {
              label: 'data',
              number: 1,
              sizeMiB: 1024,
              startMiB: 0,
              typeGuid: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
              wipePartitionEntry: false,
              shouldExist: true,
              ...since(2, { resize: false }),
            },
          ],
        },
      ],
      raid: [
        { name: 'md0', level: 'raid1', devices: ['/dev/sdb', '/dev/sdc'], spares: 0, options: ['--force'] },
      ],
      filesystems: [
        {
          device: '/dev/disk/by-partlabel/data',
          format: 'ext4',
          path: '/var/data',
          wipeFilesystem: false,
          label: 'DATA',
          options: ['-F'],
          ...since(1, { mountOptions: ['noatime'] }),
        },
      ],
      files: [
        {
          path: '/etc/hostname',
          overwrite: true,
          contents: { source: 'data:,node-1%0A' },
          append: [{ source: 'data:text/plain;base64,aGVsbG8K' }],
          mode: 420,
          user: { id: 0 },
          group: { name: 'root' },
        },
      ],
      directories: [{ path: '/opt/app', overwrite: false, mode: 493, user: { name: 'core' } }],
      links: [{ path: '/etc/localtime', target: '/usr/share/zoneinfo/UTC', hard: false }],
      ...since(2, {
        luks: [
          {
            name: 'secret',
            device: '/dev/sdd',
            label: 'SECRET',
            options: ['--type', 'luks2'],
            wipeVolume: false,
            clevis: {
              tpm2: true,
              threshold: 1,
              tang: [{ url: 'http://tang.example.org', thumbprint: 'abc' }],
            },
            ...since(4, { discard: true, openOptions: ['--perf-no_read_workqueue'] }),
          },
        ],
      }),
    },
    systemd: {
      units: [
        {
          name: 'app.service',
          enabled: true,
          mask: false,
          contents:
            '[Unit]\nDescription=app\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
          dropins: [{ name: 'limits.conf', contents: '[Service]\nLimitNOFILE=4096\n' }],
        },
      ],
    },
    passwd: {
      users: [
        {
          name: 'core',
          passwordHash: '$6$salt$hash',
          sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample core@example'],
          uid: 1000,
          gecos: 'Core',
          homeDir: '/home/core',
          noCreateHome: false,
          primaryGroup: 'core',
          groups: ['sudo'],
          noUserGroup: false,
          noLogInit: false,
          shell: '/bin/bash',
          system: false,
          ...since(2, { shouldExist: true }),
        },
      ],
      groups: [{ name: 'ops', gid: 1500, passwordHash: '*', system: false }],
    },
    ...since(3, { kernelArguments: { shouldExist: ['quiet'], shouldNotExist: ['debug'] } }),
  };
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Path = (string | number)[];

export function render(path: Path): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}`;
}

export function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return value === null ? 'null' : typeof value;
}

/** Every path below the root, with the JSON kind found there. */
export function pathsOf(value: unknown, path: Path = []): { path: Path; kind: string }[] {
  const here = path.length === 0 ? [] : [{ path, kind: kindOf(value) }];
  if (Array.isArray(value)) return [...here, ...value.flatMap((item, i) => pathsOf(item, [...path, i]))];
  if (typeof value === 'object' && value !== null) {
    return [...here, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...path, k]))];
  }
  return here;
}

export function replaced(value: unknown, path: Path, by: Json): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last !== undefined) parent[last] = by;
  return copy;
}

export const wrongValues: Json[] = ['text', 42, 1.5, true, false, {}, [], ['x'], { a: 1 }, -7, ''];

export const richVersions = ['3.0.0', '3.1.0', '3.2.0', '3.3.0', '3.4.0', '3.5.0'] as const;

/** A rich config of some spec version with one value, at any path, replaced by a value of another JSON type. */
export const wrongTypeCases = fc
  .constantFrom(...richVersions)
  .chain((version) => {
    const config = richConfig(version);
    return fc.tuple(fc.constant(version), fc.constant(config), fc.constantFrom(...pathsOf(config)));
  })
  .chain(([version, config, target]) =>
    fc
      .constantFrom(
        ...wrongValues.filter(
          (v) => kindOf(v) !== target.kind && !(target.kind === 'number' && kindOf(v) === 'integer'),
        ),
      )
      .map((wrong) => ({
        version,
        mutated: replaced(config, target.path, wrong),
        named: render(target.path),
        wrong,
      })),
  );

/** True when an issue path is `named` or lies inside it. */
export function isAtOrUnder(path: string, named: string): boolean {
  return path === named || path.startsWith(`${named}.`) || path.startsWith(`${named}[`);
}
