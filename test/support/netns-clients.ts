import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchStageArgs, ignitionBinary, readFetchedConfig } from './ignition-run.ts';
import type { Lab, Outcome } from './netns.ts';

/** The provider's base config every instance's own config is merged into. */
export const baseIgnition = {
  ignition: { version: '3.0.0' },
  storage: { files: [{ path: '/etc/provider/agent.conf', mode: 420, contents: { source: 'data:,agent' } }] },
};

/** An instance's own config: one file named after it, so a test sees whose config arrived. */
export function userConfig(name: string): string {
  return JSON.stringify({
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: `/etc/${name}.conf`, mode: 420, contents: { source: `data:,${name}` } }] },
  });
}

export interface IgnitionFetch extends Outcome {
  /** The config Ignition cached, if it got one. */
  cached: { storage?: { files?: { path: string }[] } } | undefined;
  /** The paths of the files in it, sorted. */
  files: string[];
}

/** Ignition's fetch stage as the instance's initrd runs it, inside `vm`, working under `dir`. */
export async function ignitionFetch(
  lab: Lab,
  vm: string,
  platform: 'openstack' | 'aws',
  dir: string,
): Promise<IgnitionFetch> {
  const work = join(dir, `run-${vm}-${platform}`);
  await mkdir(join(work, 'root'), { recursive: true });
  const run = await lab.inVm(vm, ignitionBinary, fetchStageArgs(platform, work), 60_000);
  const cached = (await readFetchedConfig(work)) as IgnitionFetch['cached'];
  return { ...run, cached, files: (cached?.storage?.files ?? []).map((file) => file.path).sort() };
}

/** SIGTERM, then SIGKILL if it has not exited within 15 s; resolves once it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
