import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  type AdminAuthMode,
  type AdminClient,
  adminAuthModes,
  createAdminClient,
} from '../http/admin-client.ts';

export interface ConnectionFlags {
  api: string;
  auth: AdminAuthMode;
  token?: string;
  dataDir: string;
  region?: string;
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

/** The flags every admin command takes to reach the API, on one machine or on AWS. */
export function connectionOptions(command: Command): Command {
  return command
    .option(
      '--api <url>',
      'the cldist API (on AWS: the stack output ApiUrl)',
      parseApiUrl,
      'http://127.0.0.1:8080',
    )
    .addOption(
      new Option(
        '--auth <mode>',
        'iam: SigV4 with the AWS credential chain; token: the admin token; auto: iam for execute-api URLs',
      )
        .choices(adminAuthModes)
        .default('auto'),
    )
    .option('--token <token>', 'admin token (default: the one stored in {data-dir}/admin-token)')
    .option('--data-dir <dir>', 'where "cldist serve" keeps its data and admin token', './data')
    .option(
      '--region <region>',
      "AWS region to sign for with --auth iam (default: the endpoint's, then AWS_REGION)",
    );
}

export function adminClient(flags: ConnectionFlags): AdminClient {
  return createAdminClient({
    api: flags.api,
    auth: flags.auth,
    dataDir: flags.dataDir,
    ...(flags.token === undefined ? {} : { token: flags.token }),
    ...(flags.region === undefined ? {} : { region: flags.region }),
  });
}
