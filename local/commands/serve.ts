import { type Command, InvalidArgumentError } from 'commander';
import { type CldistConfig, loadConfigFile, parseConfig } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import type { Demo } from '../demo.ts';
import type { Logger } from '../runtime/log.ts';
import type { ServeHandle } from '../serve/index.ts';
import { logFormatOption } from './log-format-option.ts';

interface ServeFlags {
  config?: string;
  dataDir?: string;
  store?: string;
  host?: string;
  port?: number;
  concurrency?: number;
  demo: boolean;
  once: boolean;
  pollSeconds?: number;
  publishSeconds: number;
  minFreeMib?: number;
  logFormat?: 'json' | 'pretty';
  metadataListen?: string;
  bootListen?: string;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** `s3://bucket/prefix` into the store's bucket and a prefix ending in "/" (or empty). */
export function parseStoreUrl(value: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(value);
  if (match === null) throw new ConfigError(`--store ${value}: expected s3://bucket or s3://bucket/prefix`);
  const [, bucket = '', rawPrefix = ''] = match;
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
  if (prefix.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new ConfigError(`--store ${value}: the prefix may not have "." or ".." segments`);
  }
  const store = parseConfig({ store: { kind: 's3', bucket, prefix } }, `--store ${value}`).store;
  return store.kind === 's3' ? { bucket: store.bucket, prefix: store.prefix } : { bucket, prefix };
}

/**
 * `--once`: the one "drain and judge" path it shares with `cldist mirror --once`, failing the exit code if an
 * origin could not be polled or mirroring paused; otherwise until the first shutdown signal.
 */
async function untilDone(
  once: boolean,
  run: {
    handle: ServeHandle;
    config: CldistConfig;
    signals: { first: Promise<NodeJS.Signals> };
    demo: Demo | undefined;
    logger: Logger;
  },
): Promise<void> {
  const { logger } = run;
  if (!once) {
    run.demo?.startPublishing();
    logger.info('shutdown.signal', { signal: await run.signals.first });
    return;
  }
  const { runOnce } = await import('../mirror-once.ts');
  const interrupt = new AbortController();
  run.signals.first.then((signal) => {
    logger.info('shutdown.signal', { signal });
    interrupt.abort();
  });
  const outcome = await runOnce(run.handle, run.config, interrupt.signal);
  const pollFailed = outcome.problems.some((problem) => problem.state === 'poll_failed');
  if (pollFailed || outcome.paused !== undefined) process.exitCode = 1;
}

async function run(flags: ServeFlags): Promise<void> {
  // Loaded here, not at the top: every other command (verify, instances) would otherwise pay the runner's
  // start-up time and memory.
  const [{ startDemo }, { createTerminal }, { createLogger }, { startServe }, { watchShutdownSignals }] =
    await Promise.all([
      import('../demo.ts'),
      import('../progress.ts'),
      import('../runtime/log.ts'),
      import('../serve/index.ts'),
      import('../runtime/signals.ts'),
    ]);
  const dataDir = flags.dataDir ?? (flags.demo ? './data/demo' : './data');
  const store = flags.store === undefined ? undefined : parseStoreUrl(flags.store);
  const { parseListenAddress } = await import('../metadata-listener.ts');
  const metadataListen =
    flags.metadataListen === undefined ? undefined : parseListenAddress(flags.metadataListen);
  const bootListen =
    flags.bootListen === undefined
      ? undefined
      : parseListenAddress(flags.bootListen, '--boot-listen', '10.0.0.1:8081');
  const tty = process.stdout.isTTY === true;
  let logger: Logger | undefined;
  const terminal = createTerminal({
    tty,
    stream: process.stdout,
    logger: () => logger ?? createLogger({ format: 'json', write: () => {} }),
  });
  const format = flags.logFormat ?? (tty ? 'pretty' : 'json');
  logger = createLogger({ format, write: terminal.writeLine });
  const signals = watchShutdownSignals({ logger });

  let demo: Demo | undefined;
  let handle: ServeHandle;
  let config: CldistConfig;
  try {
    if (flags.demo) {
      if (flags.config !== undefined)
        throw new ConfigError('--demo brings its own config; leave out --config');
      demo = await startDemo({ dataDir, logger, publishEveryMs: flags.publishSeconds * 1000 });
      config = demo.config;
    } else {
      config = flags.config === undefined ? parseConfig({}, 'default config') : loadConfigFile(flags.config);
    }
    handle = await startServe({
      config,
      dataDir,
      host: flags.host ?? config.api.host,
      port: flags.port ?? config.api.port,
      concurrency: flags.concurrency ?? config.worker.concurrency,
      store,
      region: process.env.AWS_REGION,
      logger,
      tracker: terminal.tracker,
      console: { format, writeLine: terminal.writeLine },
      pollEveryMs:
        flags.pollSeconds === undefined ? (flags.demo ? 3000 : undefined) : flags.pollSeconds * 1000,
      demo: flags.demo,
      minFreeDiskMiB: flags.minFreeMib,
      ...(metadataListen === undefined ? {} : { metadataListen }),
      ...(bootListen === undefined ? {} : { bootListen }),
    });
  } catch (error) {
    // Whatever started is closed, and a straggling handle cannot keep a failed start alive.
    await demo?.close();
    terminal.stop();
    signals.dispose();
    setTimeout(() => process.exit(process.exitCode ?? 1), 1000).unref();
    throw error;
  }
  logger.info(handle.adminTokenCreated ? 'admin.token_created' : 'admin.token', {
    file: handle.adminTokenFile,
    statusPage:
      tty || flags.demo ? `${handle.url}/#token=${encodeURIComponent(handle.adminToken)}` : `${handle.url}/`,
  });

  await untilDone(flags.once, { handle, config, signals, demo, logger });
  await demo?.close();
  await handle.close();
  signals.dispose();
  terminal.stop();
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
}

/** `cldist serve`: the whole distributor on this machine (see docs/single-machine.md). */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'Run the whole distributor on this machine: poller, mirror workers, the instance config API, the mirror ' +
        'at /mirror/{channel}/{board}/ and a status page at /, with the AWS services stood in by fauxqs and dynalite.',
    )
    .option(
      '--config <file>',
      'JSON config file (default: built-in config mirroring the real Flatcar servers)',
    )
    .option(
      '--data-dir <dir>',
      'ledger, local mirror, instance configs and admin token; kept across restarts (default: ./data, or ./data/demo with --demo)',
    )
    .option(
      '--store <url>',
      'mirror into S3 instead of {data-dir}/mirror, e.g. s3://bucket/prefix (AWS credentials from the environment)',
    )
    .option('--host <address>', 'address the HTTP server binds to (default: config api.host, 127.0.0.1)')
    .option('--port <n>', 'HTTP port, 0 for any free one (default: config api.port, 8080)', integer(0, 65535))
    .option(
      '--metadata-listen <host:port>',
      'also serve the OpenStack/EC2 metadata routes (only those) here, identifying instances by source address, e.g. 169.254.169.254:80',
    )
    .option(
      '--boot-listen <host:port>',
      'also serve network boot (/boot.ipxe, the iPXE and GRUB scripts, boot-token configs) and the mirror, and only those, here; e.g. the provisioning network address 10.0.0.1:8081',
    )
    .option(
      '--concurrency <n>',
      'artifacts mirrored at once (default: config worker.concurrency, 2)',
      integer(1, 64),
    )
    .option(
      '--demo',
      'mirror a simulated origin on loopback, signed with its own demo key (trusted only in this mode); works offline',
      false,
    )
    .option(
      '--once',
      'poll once, mirror everything pending, then exit (1 if an origin could not be polled, or mirroring is paused for lack of disk space)',
      false,
    )
    .option(
      '--poll-seconds <n>',
      'seconds between polls (default: config schedule.everyMinutes; 3 with --demo)',
      integer(1, 86_400),
    )
    .option(
      '--publish-seconds <n>',
      'with --demo: seconds between new simulated versions',
      integer(1, 3600),
      8,
    )
    .option(
      '--min-free-mib <n>',
      'pause mirroring while the data dir has less free space than this, 0 for never (default: config worker.minFreeDiskMiB, 256)',
      integer(0, 1024 * 1024),
    )
    .addOption(logFormatOption())
    .addHelpText(
      'after',
      '\nStop with Ctrl-C or SIGTERM: running transfers are aborted and nothing half-written becomes visible. A\n' +
        'second signal during shutdown only says it is under way; a third exits at once.\n' +
        'The status page and GET /v1/status need the admin token ({data-dir}/admin-token): open /#token=TOKEN in a\n' +
        'browser, or type it into the form at / (either sets a session cookie; the token never goes into a URL the\n' +
        'server sees), or send "Authorization: Bearer TOKEN".\n' +
        'A rotated signing key goes into {data-dir}/trust/keyring.asc (ASCII-armored public keys): it and the\n' +
        'keyring files are watched and reloaded without a restart; "cldist releases list" shows what waits for it.',
    )
    .action((flags: ServeFlags) => run(flags));
}
