import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { ConfigError } from '../../shared/errors.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';
import { deleteByPrefix } from './instances-bulk.ts';
import { parsePrefixOption, registerFleetCommands } from './instances-fleet.ts';

interface PutFlags extends ConnectionFlags {
  ignition?: string;
  cloudConfig?: string;
  oneTime?: boolean;
  expires?: string;
  strict?: boolean;
  newToken?: boolean;
  ip?: string[];
  publicIp?: string;
  hostname?: string;
  sshKey?: string[];
  instanceType?: string;
  zone?: string;
  attribute?: string[];
  mac?: string;
  uuid?: string;
  serial?: string;
  bootHostname?: string;
  label?: string[];
  profile?: string;
  oneTimeBootToken?: boolean;
}

/** The boot selection body from the flags, or undefined when none of them is given. */
export function bootBody(flags: PutFlags): Record<string, unknown> | undefined {
  const selectors = {
    mac: flags.mac,
    uuid: flags.uuid,
    serial: flags.serial,
    hostname: flags.bootHostname,
  };
  const given = Object.entries(selectors).filter(([, v]) => v !== undefined);
  const anySelector = given.length > 0 || flags.label !== undefined;
  if (!anySelector && flags.profile === undefined && flags.oneTimeBootToken !== true) return undefined;
  if (flags.profile === undefined) {
    throw new ConfigError('boot selectors need --profile NAME: the profile the machine boots');
  }
  if (!anySelector) {
    throw new ConfigError('--profile needs a selector: --mac, --uuid, --serial, --boot-hostname or --label');
  }
  return {
    ...Object.fromEntries(given),
    ...(flags.label === undefined ? {} : { labels: parseAttributes(flags.label, '--label') }),
    profile: flags.profile,
    ...(flags.oneTimeBootToken === true ? { oneTimeToken: true } : {}),
  };
}

/** Adds the boot selector flags, shared by `instances put` and `instances boot`. */
function bootOptions(command: Command): Command {
  return command
    .option('--mac <mac>', 'network boot: the MAC address the machine boots from')
    .option('--uuid <uuid>', 'network boot: its SMBIOS UUID')
    .option('--serial <serial>', 'network boot: its serial number')
    .option(
      '--boot-hostname <name>',
      'network boot: the host name DHCP gives it (what iPXE sends as hostname)',
    )
    .option('--label <key=value>', 'network boot: a label its chain URL must carry (repeat)', collect)
    .option('--profile <name>', 'network boot: the boot profile it gets ("cldist profiles list")')
    .option('--one-time-boot-token', 'network boot: each boot URL serves the config once only');
}

async function putBoot(id: string, flags: PutFlags, body: Record<string, unknown>): Promise<void> {
  await adminClient(flags).request('PUT', `${instancePath(id)}/boot`, body);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `KEY=VALUE` pairs into an object; the value may itself hold "=". */
export function parseAttributes(pairs: readonly string[], option = '--attribute'): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ConfigError(`${option} ${pair}: expected KEY=VALUE`);
    const key = pair.slice(0, at);
    if (Object.hasOwn(attributes, key)) throw new ConfigError(`${option} ${key} is given twice`);
    attributes[key] = pair.slice(at + 1);
  }
  return attributes;
}

/** Every key of every `--ssh-key` file (a .pub file, or several keys one per line). */
async function readSshKeys(files: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const file of files) {
    const lines = (await readConfigFile(file, 'ssh key')).split('\n').map((line) => line.trim());
    const found = lines.filter((line) => line !== '' && !line.startsWith('#'));
    if (found.length === 0) throw new ConfigError(`--ssh-key ${file} holds no key`);
    keys.push(...found);
  }
  return keys;
}

async function paramsBody(flags: PutFlags): Promise<Record<string, unknown>> {
  const optional = {
    publicIp: flags.publicIp,
    hostname: flags.hostname,
    instanceType: flags.instanceType,
    zone: flags.zone,
  };
  return {
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    ...(flags.ip === undefined ? {} : { ips: flags.ip }),
    ...(flags.sshKey === undefined ? {} : { sshKeys: await readSshKeys(flags.sshKey) }),
    ...(flags.attribute === undefined ? {} : { attributes: parseAttributes(flags.attribute) }),
  };
}

function instancePath(id: string): string {
  return `/v1/instances/${encodeURIComponent(id)}`;
}

async function readConfigFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read the ${what} file ${path}`, { cause });
  }
}

async function put(id: string, flags: PutFlags): Promise<void> {
  if ((flags.ignition === undefined) === (flags.cloudConfig === undefined)) {
    throw new ConfigError('give exactly one of --ignition FILE or --cloud-config FILE');
  }
  const boot = bootBody(flags);
  const body = {
    ...(flags.ignition === undefined ? {} : { ignition: await readConfigFile(flags.ignition, 'Ignition') }),
    ...(flags.cloudConfig === undefined
      ? {}
      : { cloudConfig: await readConfigFile(flags.cloudConfig, 'cloud-config') }),
    ...(flags.oneTime ? { oneTime: true } : {}),
    ...(flags.expires === undefined ? {} : { expiresAt: flags.expires }),
    ...(await paramsBody(flags)),
  };
  const query = new URLSearchParams();
  if (flags.strict === true) query.set('strict', 'true');
  if (flags.newToken === true) query.set('newToken', 'true');
  const response = await adminClient(flags).request(
    'PUT',
    `${instancePath(id)}${query.size > 0 ? `?${query}` : ''}`,
    body,
  );
  const answer = (await response.json()) as {
    token?: string;
    ignitionUrl?: string;
    cloudConfigUrl?: string;
    warnings?: { path: string; message: string }[];
  };
  for (const warning of answer.warnings ?? []) {
    process.stderr.write(`warning: ${warning.path}: ${warning.message}\n`);
  }
  if (answer.token === undefined) {
    process.stdout.write(`token: unchanged (the one "instances reserve" printed)\n`);
    process.stderr.write('The reserved instance keeps its token; --new-token issues a new one.\n');
    return;
  }
  const lines = [`token: ${answer.token}`];
  if (answer.ignitionUrl !== undefined) lines.push(`ignition URL: ${answer.ignitionUrl}`);
  if (answer.cloudConfigUrl !== undefined) lines.push(`cloud-config URL: ${answer.cloudConfigUrl}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stderr.write('The token is shown only this once; put the config again to issue a new one.\n');
  if (boot !== undefined) await putBootAfterConfig(id, flags, boot);
}

/** The config is stored by now (and its token printed): a refused selection says how to set it alone. */
async function putBootAfterConfig(id: string, flags: PutFlags, body: Record<string, unknown>): Promise<void> {
  try {
    await putBoot(id, flags, body);
  } catch (error) {
    throw new ConfigError(
      `the config of ${id} is stored, but its boot selectors were refused: ${(error as Error).message}; ` +
        `fix them and run "cldist instances boot ${id} …" (the config and token stay as they are)`,
    );
  }
  process.stdout.write(`boot: profile ${String(body.profile)}\n`);
}

/** `cldist instances put|get|delete|list|put-many|reserve|revoke`: the admin side of the instance config API, over HTTP. */
export function registerInstancesCommand(program: Command): void {
  const instances = program
    .command('instances')
    .description('register, show and remove per-instance Ignition / cloud-config configs');

  const putCommand = connectionOptions(
    instances
      .command('put <id>')
      .description('validate and store a config; prints the instance token and URL (shown only once)')
      .addOption(
        new Option('--ignition <file>', 'an Ignition config (spec 3.0.0 to 3.5.0)').conflicts('cloudConfig'),
      )
      .addOption(new Option('--cloud-config <file>', 'a legacy cloud-config ("#cloud-config" first line)'))
      .option('--one-time', 'serve it once only, then never again')
      .option('--expires <iso>', 'stop serving it at this ISO-8601 time')
      .option(
        '--strict',
        'refuse Ignition keys the spec does not have, whatever api.unknownIgnitionKeys says (sent as ?strict=true)',
      )
      .option('--new-token', 'on a reserved instance, issue a new token instead of keeping the reserved one')
      .option(
        '--ip <address>',
        'a source address of the instance (repeat for more); one instance each',
        collect,
      )
      .option('--public-ip <address>', 'its public address (metadata public-ipv4)')
      .option('--hostname <name>', 'its host name (default: the id)')
      .option('--ssh-key <file>', 'an OpenSSH public key file (repeat for more)', collect)
      .option('--instance-type <type>', 'its instance type (metadata instance-type)')
      .option('--zone <zone>', 'its availability zone')
      .option(
        '--attribute <key=value>',
        'an attribute (OpenStack meta, EC2 instance tags); repeatable',
        collect,
      ),
  );
  bootOptions(putCommand).action((id: string, flags: PutFlags) => put(id, flags));

  connectionOptions(
    bootOptions(
      instances
        .command('boot <id>')
        .description(
          "set a registered instance's network boot selectors and profile (its config and token stay)",
        ),
    ),
  ).action(async (id: string, flags: PutFlags) => {
    const body = bootBody(flags);
    if (body === undefined)
      throw new ConfigError('give --profile NAME and at least one selector (--mac, --uuid, …)');
    await putBoot(id, flags, body);
    process.stdout.write(`boot: ${id} boots profile ${String(body.profile)}\n`);
  });

  connectionOptions(
    instances.command('get <id>').description("show a config's metadata and fetch audit (never its token)"),
  ).action(async (id: string, flags: ConnectionFlags) => {
    const response = await adminClient(flags).request('GET', instancePath(id));
    process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  });

  connectionOptions(
    instances
      .command('delete [id]')
      .description('remove a config and its audit; or, with --prefix, every instance whose id starts so')
      .option('--prefix <prefix>', 'delete every instance whose id starts with this', parsePrefixOption)
      .option('--yes', 'with --prefix: really delete (without it, only says what would go)'),
  ).action(async (id: string | undefined, flags: ConnectionFlags & { prefix?: string; yes?: boolean }) => {
    if ((id === undefined) === (flags.prefix === undefined)) {
      throw new ConfigError('give an instance id, or --prefix P (with --yes), not both');
    }
    if (flags.prefix !== undefined) return deleteByPrefix(flags.prefix, flags);
    await adminClient(flags).request('DELETE', instancePath(id ?? ''));
    process.stdout.write(`deleted ${id}\n`);
  });
  registerFleetCommands(instances);
}
