import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, PermanentError, TransientError } from '../../shared/errors.ts';
import { adminTokenFileName } from '../admin-token.ts';

interface ConnectionFlags {
  api: string;
  token?: string;
  dataDir: string;
}

interface PutFlags extends ConnectionFlags {
  ignition?: string;
  cloudConfig?: string;
  oneTime?: boolean;
  expires?: string;
  strict?: boolean;
  ip: string[];
  publicIp?: string;
  hostname?: string;
  sshKey: string[];
  instanceType?: string;
  zone?: string;
  attribute: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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
    ...(flags.ip.length === 0 ? {} : { ips: flags.ip }),
    ...(flags.sshKey.length === 0 ? {} : { sshKeys: await readSshKeys(flags.sshKey) }),
    ...(flags.attribute.length === 0 ? {} : { attributes: parseAttributes(flags.attribute) }),
  };
}

interface ApiErrorBody {
  error?: { code?: string; message?: string; issues?: { path: string; message: string }[] };
}

/** The stored admin token, never created here: only the server issues it. */
async function adminToken(flags: ConnectionFlags): Promise<string> {
  if (flags.token !== undefined) return flags.token;
  const path = join(flags.dataDir, adminTokenFileName);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (cause) {
    throw new ConfigError(
      `no admin token at ${path}: start "cldist serve --data-dir ${flags.dataDir}" once, or pass --token`,
      { cause },
    );
  }
}

async function call(
  flags: ConnectionFlags,
  method: string,
  id: string,
  body?: unknown,
  query = '',
): Promise<Response> {
  const url = `${flags.api.replace(/\/+$/, '')}/v1/instances/${encodeURIComponent(id)}${query}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${await adminToken(flags)}`, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new TransientError(
      'api-unreachable',
      `cannot reach the API at ${flags.api}; is "cldist serve" running?`,
      {
        cause,
      },
    );
  }
  if (response.ok) return response;
  const answer = (await response.json().catch(() => ({}))) as ApiErrorBody;
  const issues = answer.error?.issues ?? [];
  const detail =
    issues.length > 0
      ? issues.map((issue) => `  ${issue.path}: ${issue.message}`).join('\n')
      : (answer.error?.message ?? response.statusText);
  const message = `${method} ${url} failed with ${response.status}${issues.length > 0 ? ':\n' : ': '}${detail}`;
  if (response.status >= 500) throw new TransientError('api-failed', message);
  throw new PermanentError(answer.error?.code ?? 'api-refused', message);
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
  const response = await call(flags, 'PUT', id, body, flags.strict ? '?strict=true' : '');
  const answer = (await response.json()) as {
    token: string;
    ignitionUrl?: string;
    cloudConfigUrl?: string;
    warnings?: { path: string; message: string }[];
  };
  for (const warning of answer.warnings ?? []) {
    process.stderr.write(`warning: ${warning.path}: ${warning.message}\n`);
  }
  const lines = [`token: ${answer.token}`];
  if (answer.ignitionUrl !== undefined) lines.push(`ignition URL: ${answer.ignitionUrl}`);
  if (answer.cloudConfigUrl !== undefined) lines.push(`cloud-config URL: ${answer.cloudConfigUrl}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stderr.write('The token is shown only this once; put the config again to issue a new one.\n');
}

/** A URL that cannot be fetched is a usage error (exit 2), caught before any token is read or sent. */
export function parseApiUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected an http(s) URL such as http://127.0.0.1:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`expected an http(s) URL, not ${url.protocol}`);
  }
  return value;
}

function connectionOptions(command: Command): Command {
  return command
    .option('--api <url>', 'the cldist API', parseApiUrl, 'http://127.0.0.1:8080')
    .option('--token <token>', 'admin token (default: the one stored in {data-dir}/admin-token)')
    .option('--data-dir <dir>', 'where "cldist serve" keeps its data and admin token', './data');
}

/** `cldist instances put|get|delete`: the admin side of the instance config API, over HTTP. */
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
      .option(
        '--ip <address>',
        'a source address of the instance (repeat for more); one instance each',
        collect,
        [],
      )
      .option('--public-ip <address>', 'its public address (metadata public-ipv4)')
      .option('--hostname <name>', 'its host name (default: the id)')
      .option('--ssh-key <file>', 'an OpenSSH public key file (repeat for more)', collect, [])
      .option('--instance-type <type>', 'its instance type (metadata instance-type)')
      .option('--zone <zone>', 'its availability zone')
      .option(
        '--attribute <key=value>',
        'an attribute (OpenStack meta, EC2 instance tags); repeatable',
        collect,
        [],
      ),
  ).action((id: string, flags: PutFlags) => put(id, flags));

  connectionOptions(
    instances.command('get <id>').description("show a config's metadata and fetch audit (never its token)"),
  ).action(async (id: string, flags: ConnectionFlags) => {
    const response = await call(flags, 'GET', id);
    process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  });

  connectionOptions(instances.command('delete <id>').description('remove a config and its audit')).action(
    async (id: string, flags: ConnectionFlags) => {
      await call(flags, 'DELETE', id);
      process.stdout.write(`deleted ${id}\n`);
    },
  );
}
