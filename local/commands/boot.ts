import { type Command, Option } from 'commander';
import { ConfigError } from '../../shared/errors.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';
import { parseAttributes } from './instances.ts';

interface PreviewFlags extends ConnectionFlags {
  mac?: string;
  uuid?: string;
  serial?: string;
  hostname?: string;
  label?: string[];
  loader: 'ipxe' | 'grub';
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The query a machine with these facts sends; labels as further parameters, as iPXE chain URLs carry them. */
export function previewQuery(flags: Omit<PreviewFlags, keyof ConnectionFlags>): URLSearchParams {
  const query = new URLSearchParams({ loader: flags.loader });
  for (const kind of ['mac', 'uuid', 'serial', 'hostname'] as const) {
    const value = flags[kind];
    if (value !== undefined) query.set(kind, value);
  }
  for (const [key, value] of Object.entries(parseAttributes(flags.label ?? [], '--label')))
    query.set(key, value);
  return query;
}

/** `cldist boot preview|recent`: what a network-booting machine gets, without booting one. */
export function registerBootCommand(program: Command): void {
  const boot = program
    .command('boot')
    .description('bare-metal network boot (iPXE, GRUB): preview scripts, recent boots');

  connectionOptions(
    boot
      .command('preview')
      .description(
        'print the exact script a machine with these facts would get (its boot token shown as a placeholder, since a preview mints none)',
      )
      .option('--mac <mac>', 'its MAC address (52:54:00:ab:cd:ef or 52-54-00-ab-cd-ef)')
      .option('--uuid <uuid>', 'its SMBIOS UUID')
      .option('--serial <serial>', 'its serial number')
      .option('--hostname <name>', 'the host name DHCP gave it')
      .option('--label <key=value>', 'a label its chain URL carries (repeat)', collect)
      .addOption(
        new Option('--loader <loader>', 'the script language').choices(['ipxe', 'grub']).default('ipxe'),
      ),
  ).action(async (flags: PreviewFlags) => {
    if ([flags.mac, flags.uuid, flags.serial, flags.hostname, flags.label].every((v) => v === undefined)) {
      throw new ConfigError('give at least one of --mac, --uuid, --serial, --hostname or --label');
    }
    const response = await adminClient(flags).request('GET', `/v1/boot/preview?${previewQuery(flags)}`);
    process.stdout.write(await response.text());
  });

  connectionOptions(
    boot
      .command('recent')
      .description('machines that asked to boot lately (this server process), newest first'),
  ).action(async (flags: ConnectionFlags) => {
    const response = await adminClient(flags).request('GET', '/v1/boot/recent');
    process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  });
}
