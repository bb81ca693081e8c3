import type { Command } from 'commander';
import { ConfigError } from '../../shared/errors.ts';
import {
  parseApiUrl,
  parseBoundedInteger,
  parseListen,
  proxyRetryAfterSeconds,
} from '../metadata-proxy/options.ts';
import { type ProxySettings, proxyDefaults } from '../metadata-proxy/start.ts';
import { logFormatOption } from './log-format-option.ts';

interface ProxyFlags {
  listen?: string;
  api?: string;
  secretFile?: string;
  cacheSeconds: string;
  negativeCacheSeconds: string;
  cacheEntries: string;
  timeoutSeconds: string;
  secretReloadSeconds: string;
  logFormat?: 'json' | 'pretty';
}

function required(flag: string, value: string | undefined, example: string): string {
  if (value === undefined || value === '') {
    throw new ConfigError(`${flag} is required, e.g. ${flag} ${example}`);
  }
  return value;
}

/** Every flag checked before anything starts; each error names its flag (exit 2). */
export function settingsFromFlags(flags: ProxyFlags): ProxySettings {
  return {
    listen: parseListen(required('--listen', flags.listen, '169.254.169.254:80')),
    api: parseApiUrl(required('--api', flags.api, 'https://cldist.example.net')),
    secretFile: required('--secret-file', flags.secretFile, '/etc/cldist/metadata-proxy.secret'),
    cacheSeconds: parseBoundedInteger('--cache-seconds', flags.cacheSeconds, 0, 3600),
    negativeCacheSeconds: parseBoundedInteger('--negative-cache-seconds', flags.negativeCacheSeconds, 0, 60),
    cacheEntries: parseBoundedInteger('--cache-entries', flags.cacheEntries, 0, 1_000_000),
    timeoutSeconds: parseBoundedInteger('--timeout-seconds', flags.timeoutSeconds, 1, 120),
    secretReloadSeconds: parseBoundedInteger('--secret-reload-seconds', flags.secretReloadSeconds, 1, 86_400),
    maxResponseBytes: proxyDefaults.maxResponseBytes,
    shutdownGraceSeconds: proxyDefaults.shutdownGraceSeconds,
  };
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

async function run(flags: ProxyFlags): Promise<void> {
  const settings = settingsFromFlags(flags);
  const [{ createLogger }, { startProxyFromSettings }] = await Promise.all([
    import('../runtime/log.ts'),
    import('../metadata-proxy/start.ts'),
  ]);
  const format = flags.logFormat ?? (process.stdout.isTTY === true ? 'pretty' : 'json');
  const logger = createLogger({ format, write: (line) => process.stdout.write(`${line}\n`) });
  const proxy = await startProxyFromSettings(settings, logger);
  const signal = await waitForSignal();
  logger.info('shutdown.signal', { signal });
  await proxy.close();
}

/** `cldist metadata-proxy`: the trusted proxy a provider runs on each hypervisor or router. */
export function registerMetadataProxyCommand(program: Command): void {
  program
    .command('metadata-proxy')
    .description(
      'Serve the metadata routes (OpenStack, EC2/IMDSv2) to instances at a link-local address and forward ' +
        'each request to the cldist API, identifying the instance by its TCP source address: the API is asked ' +
        'which instance holds that address, and the request goes on with a signed X-Instance-ID ' +
        '(HMAC-SHA256 under the shared secret). Identity headers the instance sends are dropped.',
    )
    .option(
      '--listen <addr:port>',
      'address and port to serve instances on, e.g. 169.254.169.254:80 (required)',
    )
    .option('--api <url>', 'base URL of the cldist API, e.g. https://cldist.example.net (required)')
    .option(
      '--secret-file <file>',
      "file holding the shared secret, 16+ characters (one per line, the first signs; the API's format); re-read when it changes (required)",
    )
    .option(
      '--cache-seconds <n>',
      'seconds an address → instance answer is reused; also the longest an address move can lag (0 = off)',
      String(proxyDefaults.cacheSeconds),
    )
    .option(
      '--negative-cache-seconds <n>',
      'seconds an "unregistered address" answer is reused (0 = off)',
      String(proxyDefaults.negativeCacheSeconds),
    )
    .option('--cache-entries <n>', 'addresses cached at most', String(proxyDefaults.cacheEntries))
    .option(
      '--timeout-seconds <n>',
      'wait for the API (and for an instance to send its request) at most this long',
      String(proxyDefaults.timeoutSeconds),
    )
    .option(
      '--secret-reload-seconds <n>',
      're-read the secret file at least this often, besides watching it',
      String(proxyDefaults.secretReloadSeconds),
    )
    .addOption(logFormatOption())
    .addHelpText(
      'after',
      '\nAn unregistered source address gets 404. If the API cannot be reached the instance gets 503 with\n' +
        `Retry-After: ${proxyRetryAfterSeconds} (Ignition and Afterburn retry); if the API refuses the proxy's signature, 502 and an\n` +
        'error log line. Responses are capped at 4 MiB. Stop with SIGTERM or Ctrl-C: requests in flight get\n' +
        `${proxyDefaults.shutdownGraceSeconds} s to finish. HTTPS to the API uses the system CAs (add more with NODE_EXTRA_CA_CERTS).`,
    )
    .action((flags: ProxyFlags) => run(flags));
}
