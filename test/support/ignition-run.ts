import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Debian's Ignition client, the binary its dracut module runs at first boot. */
export const ignitionBinary = '/usr/lib/dracut/modules.d/30ignition/ignition';

export interface IgnitionRun {
  exitCode: number;
  output: string;
  /** The config cache Ignition wrote, when the fetch succeeded. */
  cached?: unknown;
}

/**
 * The command line of Ignition's fetch stage on `platform`, with every path it writes moved under `work`
 * (the flags `ignition -help` lists); the config it fetched lands in `fetchedConfigPath(work)`.
 */
export function fetchStageArgs(platform: string, work: string): string[] {
  return [
    `-platform=${platform}`,
    '-stage=fetch',
    `-root=${join(work, 'root')}`,
    `-config-cache=${fetchedConfigPath(work)}`,
    `-state-file=${join(work, 'state')}`,
    `-neednet=${join(work, 'neednet')}`,
    '-log-to-stdout',
  ];
}

function fetchedConfigPath(work: string): string {
  return join(work, 'ignition.json');
}

/** The config a fetch stage cached under `work`; undefined if it got none. */
export function readFetchedConfig(work: string): Promise<unknown> {
  return readFile(fetchedConfigPath(work), 'utf8').then(
    (text) => JSON.parse(text) as unknown,
    () => undefined,
  );
}

/**
 * Ignition's fetch stage only, with nothing written to this system: its `file` platform reads the config
 * named by IGNITION_CONFIG_FILE (coreos/ignition, internal/providers/file), and every path it writes is
 * moved under `work`.
 */
export async function runIgnitionFetch(work: string, pointer: unknown): Promise<IgnitionRun> {
  await mkdir(join(work, 'root'), { recursive: true });
  await writeFile(join(work, 'cfg.ign'), JSON.stringify(pointer));
  const args = fetchStageArgs('file', work);
  const { exitCode, output } = await new Promise<{ exitCode: number; output: string }>((resolve) => {
    execFile(
      ignitionBinary,
      args,
      { env: { ...process.env, IGNITION_CONFIG_FILE: join(work, 'cfg.ign') }, timeout: 50_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ exitCode: code, output: `${stdout}${stderr}` });
      },
    );
  });
  const cached = await readFetchedConfig(work);
  return { exitCode, output, ...(cached === undefined ? {} : { cached }) };
}
