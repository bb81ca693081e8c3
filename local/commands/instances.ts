import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { ConfigError } from '../../shared/errors.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';

interface PutFlags extends ConnectionFlags {
  ignition?: string;
  cloudConfig?: string;
  oneTime?: boolean;
  expires?: string;
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
  };
  const response = await adminClient(flags).request('PUT', instancePath(id), body);
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
      .option('--expires <iso>', 'stop serving it at this ISO-8601 time'),
  ).action((id: string, flags: PutFlags) => put(id, flags));

  connectionOptions(
    instances.command('get <id>').description("show a config's metadata and fetch audit (never its token)"),
  ).action(async (id: string, flags: ConnectionFlags) => {
    const response = await adminClient(flags).request('GET', instancePath(id));
    process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  });

  connectionOptions(instances.command('delete <id>').description('remove a config and its audit')).action(
    async (id: string, flags: ConnectionFlags) => {
      await adminClient(flags).request('DELETE', instancePath(id));
      process.stdout.write(`deleted ${id}\n`);
    },
  );
}
