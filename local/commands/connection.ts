import { type Command, Option } from 'commander';
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

/** The flags every admin command takes to reach the API, on one machine or on AWS. */
export function connectionOptions(command: Command): Command {
  return command
    .option('--api <url>', 'the cldist API (on AWS: the stack output ApiUrl)', 'http://127.0.0.1:8080')
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
