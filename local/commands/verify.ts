import { readFile, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import {
  type Keyring,
  loadKeyring,
  loadKeyringFromConfig,
  primaryFingerprintsOf,
} from '../../shared/verify/keyring.ts';
import { readChunks } from '../../shared/verify/read-chunks.ts';
import { verifyDetached } from '../../shared/verify/verify.ts';

interface VerifyCommandOptions {
  signature?: string;
  keyring?: string[];
  trust?: string[];
  json?: boolean;
  stats?: boolean;
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
}

async function keyringFor(options: VerifyCommandOptions): Promise<Keyring> {
  const defaults = parseConfig({}).keyring;
  if (options.keyring === undefined) {
    const trusted = options.trust ?? defaults.trustedFingerprints;
    return loadKeyringFromConfig({ ...defaults, trustedFingerprints: trusted });
  }
  return keyringFromFiles(options.keyring, options.trust);
}

/**
 * Like sqv, a keyring file named on the command line is the operator's statement of trust: its primary
 * keys are trusted unless `trust` narrows them down.
 */
export async function keyringFromFiles(paths: string[], trust?: string[]): Promise<Keyring> {
  const texts = await Promise.all(
    paths.map(async (path) => (await readInput(path, 'keyring file')).toString('utf8')),
  );
  const labels = paths.map((path) => `keyring file ${path}`);
  const trusted = trust ?? (await primaryFingerprintsOf(texts, labels));
  return loadKeyring(texts, trusted, labels);
}

/** `-` reads the data from standard input, as gpg and sqv do. */
async function* dataOf(file: string): AsyncIterable<Uint8Array> {
  if (file !== '-') {
    yield* readChunks(file);
    return;
  }
  for await (const chunk of process.stdin) {
    yield chunk as Uint8Array;
  }
}

async function runVerify(file: string, options: VerifyCommandOptions): Promise<void> {
  if (file === '-' && options.signature === undefined) {
    throw new ConfigError('reading the data from standard input (-) needs --signature FILE.sig');
  }
  // The data file is what the operator named; a missing one is reported before its (derived) .sig.
  const size =
    file === '-'
      ? undefined
      : (
          await stat(file).catch((cause: unknown) => {
            throw new ConfigError(`cannot read file ${file}: ${(cause as Error).message}`, { cause });
          })
        ).size;
  const signaturePath = options.signature ?? `${file}.sig`;
  const signature = await readInput(signaturePath, 'signature file');
  const keyring = await keyringFor(options);
  const { maxClockSkewSeconds } = parseConfig({}).keyring;
  const started = performance.now();
  const result = await verifyDetached(dataOf(file), signature, keyring, {
    now: new Date(),
    maxClockSkewSeconds,
    ...(size === undefined ? {} : { expectedBytes: size }),
  });
  const seconds = (performance.now() - started) / 1000;
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ file, signature: signaturePath, good: true, ...result, signatureCreated: result.signatureCreated.toISOString() })}\n`,
    );
  } else {
    process.stdout.write(
      `good signature from ${result.primaryKeyFingerprint} (subkey ${result.signingKeyFingerprint}, made ${result.signatureCreated.toISOString()})\n`,
    );
  }
  if (options.stats) {
    const megabytesPerSecond = result.bytes / 1e6 / seconds;
    const peakMiB = process.resourceUsage().maxRSS / 1024;
    process.stderr.write(
      `verified ${result.bytes} bytes in ${seconds.toFixed(3)} s: ${megabytesPerSecond.toFixed(1)} MB/s, peak RSS ${peakMiB.toFixed(1)} MiB\n`,
    );
  }
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Operators check a downloaded release by hand with exactly the rules the mirror applies. */
export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      "Check <file> against its detached OpenPGP signature with the mirror's trust rules. Exit 0 if good; " +
        'a refused signature exits 1 with the reason (tampered, unknown-key, subkey-revoked-compromised, ...); ' +
        'a usage error (bad option, unreadable file or key) exits 2.',
    )
    .argument('<file>', 'the file to check, or - for standard input (streamed, never held in memory whole)')
    .option('--signature <path>', 'detached signature, binary or ASCII-armored (default: <file>.sig)')
    .option(
      '--keyring <file>',
      'ASCII-armored public key file; repeat for several (default: the bundled Flatcar and CoreOS keys in keys/)',
      collect,
    )
    .option(
      '--trust <fingerprint>',
      'primary key fingerprint to trust; repeat for several (default: every primary in --keyring, else the Flatcar and CoreOS primaries)',
      collect,
    )
    .option('--json', 'print the result as one JSON object')
    .option('--stats', 'print throughput (MB/s) and peak RSS to stderr')
    .action(async (file: string, options: VerifyCommandOptions) => {
      await runVerify(file, options);
    });
}
