import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Each command lives in its own module and adds itself here, so the CLI entry stays small. A command's
 * module (and what it imports: openpgp, zod schemas, the SDK signer, the stand-ins) is loaded only when
 * that command runs; `--help`, `help` and an unknown name load them all, so the listing stays complete.
 */
const commands = new Map<string, () => Promise<Register>>([
  ['serve', async () => (await import('./serve.ts')).registerServeCommand],
  ['instances', async () => (await import('./instances.ts')).registerInstancesCommand],
  ['verify', async () => (await import('./verify.ts')).registerVerifyCommand],
  ['mirror', async () => (await import('./mirror.ts')).registerMirrorCommand],
  ['releases', async () => (await import('./releases.ts')).registerReleasesCommand],
  ['metadata-proxy', async () => (await import('./metadata-proxy.ts')).registerMetadataProxyCommand],
  ['config', async () => (await import('./config.ts')).registerConfigCommand],
  ['profiles', async () => (await import('./profiles.ts')).registerProfilesCommand],
  ['boot', async () => (await import('./boot.ts')).registerBootCommand],
  ['updates', async () => (await import('./updates.ts')).registerUpdatesCommand],
]);

/** Registers the command `argv` names, or every command when it names none of them. */
export async function registerCommands(
  program: Command,
  argv: readonly string[] = process.argv,
): Promise<void> {
  const named = commands.get(argv[2] ?? '');
  for (const load of named === undefined ? commands.values() : [named]) (await load())(program);
}
