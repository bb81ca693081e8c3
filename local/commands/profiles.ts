import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { BootProfile } from '../../shared/boot/profiles.ts';
import { ConfigError } from '../../shared/errors.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';

interface PutFlags extends ConnectionFlags {
  file?: string;
  channel?: string;
  board?: string;
  release?: string;
  kernelArg?: string[];
  installDisk?: string;
  installChannel?: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function profilePath(name: string): string {
  return `/v1/boot/profiles/${encodeURIComponent(name)}`;
}

/** The profile body from `--file`, or from the flags; the API checks every field and names a bad one. */
export async function profileBody(flags: PutFlags): Promise<Record<string, unknown>> {
  if (flags.file !== undefined) {
    const given = [flags.channel, flags.board, flags.release, flags.kernelArg, flags.installDisk];
    if (given.some((v) => v !== undefined))
      throw new ConfigError('give --file FILE or the profile flags, not both');
    let text: string;
    try {
      text = await readFile(flags.file, 'utf8');
    } catch (cause) {
      throw new ConfigError(`cannot read the profile file ${flags.file}`, { cause });
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (cause) {
      throw new ConfigError(`profile file ${flags.file} is not JSON: ${(cause as Error).message}`, { cause });
    }
  }
  if (flags.channel === undefined) throw new ConfigError('give --channel CHANNEL (or --file FILE)');
  if (flags.installChannel !== undefined && flags.installDisk === undefined) {
    throw new ConfigError('--install-channel needs --install-disk');
  }
  return {
    channel: flags.channel,
    ...(flags.board === undefined ? {} : { board: flags.board }),
    ...(flags.release === undefined ? {} : { version: flags.release }),
    ...(flags.kernelArg === undefined ? {} : { kernelArgs: flags.kernelArg }),
    ...(flags.installDisk === undefined
      ? {}
      : {
          install: {
            disk: flags.installDisk,
            ...(flags.installChannel === undefined ? {} : { channel: flags.installChannel }),
          },
        }),
  };
}

export function describeProfile(profile: BootProfile): string {
  const boots = profile.install === undefined ? 'runs from RAM' : `installs to ${profile.install.disk}`;
  return `${profile.name}  ${profile.channel}/${profile.board} ${profile.version}  ${boots}  ${profile.kernelArgs.join(' ')}`;
}

/** `cldist profiles put|get|list|delete`: how matched machines boot. */
export function registerProfilesCommand(program: Command): void {
  const profiles = program
    .command('profiles')
    .description(
      'bare-metal boot profiles: which release a machine boots, with which kernel arguments, in RAM or to disk',
    );

  connectionOptions(
    profiles
      .command('put <name>')
      .description('create or replace a profile; a pinned version must be mirrored and verified already')
      .option('--file <file>', 'the profile as JSON ({"channel","board","version","kernelArgs","install"})')
      .option('--channel <channel>', 'the release channel, e.g. stable')
      .option('--board <board>', 'the board (default amd64-usr)')
      .option('--release <version>', 'a pinned version such as 4081.2.0, or "current" (default: current)')
      .option(
        '--kernel-arg <arg>',
        'a kernel argument, e.g. flatcar.autologin (repeat; default: flatcar.first_boot=1)',
        collect,
      )
      .option(
        '--install-disk <device>',
        'install to this disk with flatcar-install, then reboot (default: run from RAM)',
      )
      .option(
        '--install-channel <channel>',
        "install this channel's current release instead of the profile's",
      ),
  ).action(async (name: string, flags: PutFlags) => {
    const response = await adminClient(flags).request('PUT', profilePath(name), await profileBody(flags));
    const profile = (await response.json()) as BootProfile;
    process.stdout.write(`${response.status === 201 ? 'created' : 'replaced'} ${describeProfile(profile)}\n`);
  });

  connectionOptions(profiles.command('get <name>').description('show one profile as JSON')).action(
    async (name: string, flags: ConnectionFlags) => {
      const response = await adminClient(flags).request('GET', profilePath(name));
      process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
    },
  );

  connectionOptions(
    profiles.command('list').description('every profile, one a line').option('--json', 'print JSON instead'),
  ).action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const response = await adminClient(flags).request('GET', '/v1/boot/profiles');
    const { profiles: list } = (await response.json()) as { profiles: BootProfile[] };
    if (flags.json === true) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    else
      process.stdout.write(list.length === 0 ? 'no profiles\n' : `${list.map(describeProfile).join('\n')}\n`);
  });

  connectionOptions(
    profiles
      .command('delete <name>')
      .description('remove a profile; machines that name it are told so on their console until it returns'),
  ).action(async (name: string, flags: ConnectionFlags) => {
    await adminClient(flags).request('DELETE', profilePath(name));
    process.stdout.write(`deleted ${name}\n`);
  });
}
