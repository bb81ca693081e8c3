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
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `KEY=VALUE` pairs into an object; the value may itself hold "=". */
export function parseAttributes(pairs: readonly string[]): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ConfigError(`--attribute ${pair}: expected KEY=VALUE`);
    const key = pair.slice(0, at);
    if (Object.hasOwn(attributes, key)) throw new ConfigError(`--attribute ${key} is given twice`);
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
}

/** `cldist instances put|get|delete|list|put-many|reserve|revoke`: the admin side of the instance config API, over HTTP. */
export function registerInstancesCommand(program: Command): void {
  const instances = program
    .command('instances')
    .description('register, show and remove per-instance Ignition / cloud-config configs');

  connectionOptions(
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
  ).action((id: string, flags: PutFlags) => put(id, flags));

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
