import { type Command, InvalidArgumentError } from 'commander';
import * as z from 'zod';
import { ConfigError } from '../../shared/errors.ts';
import {
  InvalidAdminQueryError,
  maxListLimit,
  maxReservationMs,
  parseLimit,
  parsePrefix,
} from '../../shared/instances/admin.ts';
import { maxBulkLines } from '../../shared/instances/bulk.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';
import { bulkBatchLines, listAll, type PutManyFlags, putMany } from './instances-bulk.ts';

const isoDateTime = z.iso.datetime({ offset: true });

/** `--deadline`: an ISO-8601 date-time with a zone (`2026-05-01T12:00:00Z`). */
export function parseDeadline(value: string): string {
  if (!isoDateTime.safeParse(value).success) {
    throw new InvalidArgumentError(
      `expected an ISO-8601 date-time with a zone, e.g. 2026-05-01T12:00:00Z, not ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return value;
}

const durationUnits = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

/** `--for`: `90s`, `15m`, `2h`, `1d`, or a sum such as `1h30m`; at most 7 days. Answers milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?$/.exec(value);
  const ms =
    match === null
      ? 0
      : [durationUnits.d, durationUnits.h, durationUnits.m, durationUnits.s].reduce(
          (sum, unit, i) => sum + Number(match[i + 1] ?? 0) * unit,
          0,
        );
  if (match === null || value === '' || ms <= 0) {
    throw new InvalidArgumentError(
      `expected a duration such as 90s, 15m, 2h, 1d or 1h30m, not ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  if (ms > maxReservationMs)
    throw new InvalidArgumentError('is more than 7 days; reserve closer to the boot');
  return ms;
}

/** `--prefix`: the start of an instance id (the API's own rule). */
export function parsePrefixOption(value: string): string {
  try {
    const prefix = parsePrefix(value);
    if (prefix === '') throw new InvalidArgumentError('expected the start of an instance id, e.g. web-');
    return prefix;
  } catch (error) {
    if (error instanceof InvalidAdminQueryError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

interface ListFlags extends ConnectionFlags {
  prefix?: string;
  json?: boolean;
  pageSize: number;
}

async function list(flags: ListFlags): Promise<void> {
  let count = 0;
  for await (const instance of listAll(adminClient(flags), flags.prefix, flags.pageSize)) {
    count++;
    const line = flags.json
      ? JSON.stringify(instance)
      : [
          instance.id,
          instance.state,
          instance.kind ?? '-',
          instance.reservedUntil ?? '-',
          instance.ips.join(',') || '-',
          instance.updatedAt,
        ].join('\t');
    process.stdout.write(`${line}\n`);
  }
  if (!flags.json) process.stderr.write(`${count} instance${count === 1 ? '' : 's'}\n`);
}

function parsePageSize(value: string): number {
  try {
    return parseLimit(value);
  } catch (error) {
    if (error instanceof InvalidAdminQueryError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

/** `--lines-per-request`: 1 to what one request may carry. */
export function parseLinesPerRequest(value: string): number {
  const lines = /^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : 0;
  if (lines < 1 || lines > maxBulkLines) {
    throw new InvalidArgumentError(`expected 1 to ${maxBulkLines} (the most one request may carry)`);
  }
  return lines;
}

function positiveLine(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new InvalidArgumentError('expected a line number from 1');
  return Number(value);
}

interface ReserveFlags extends ConnectionFlags {
  deadline?: string;
  for?: number;
  ip?: string[];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function printToken(answer: {
  token: string;
  ignitionUrl?: string;
  cloudConfigUrl?: string;
  reservedUntil?: string;
}) {
  const lines = [`token: ${answer.token}`];
  if (answer.ignitionUrl !== undefined) lines.push(`ignition URL: ${answer.ignitionUrl}`);
  if (answer.cloudConfigUrl !== undefined) lines.push(`cloud-config URL: ${answer.cloudConfigUrl}`);
  if (answer.reservedUntil !== undefined) lines.push(`reserved until: ${answer.reservedUntil}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function reserve(id: string, flags: ReserveFlags): Promise<void> {
  if (flags.deadline !== undefined && flags.for !== undefined) {
    throw new ConfigError('give --deadline or --for, not both');
  }
  const deadline =
    flags.deadline ?? (flags.for === undefined ? undefined : new Date(Date.now() + flags.for).toISOString());
  const response = await adminClient(flags).request(
    'POST',
    `/v1/instances/${encodeURIComponent(id)}/reserve`,
    {
      ...(deadline === undefined ? {} : { deadline }),
      ...(flags.ip === undefined ? {} : { ips: flags.ip }),
    },
  );
  printToken((await response.json()) as { token: string });
  process.stderr.write('The token is shown only this once; "instances put" later keeps it.\n');
}

/** `cldist instances list|put-many|reserve|revoke`: the fleet side of the admin API. */
export function registerFleetCommands(instances: Command): void {
  connectionOptions(
    instances
      .command('list')
      .description('list instances in id order (every page), without their tokens')
      .option('--prefix <prefix>', 'only ids that start with this', parsePrefixOption)
      .option('--json', 'one JSON object a line instead of tab-separated columns')
      .option(
        '--page-size <n>',
        `instances asked for per request, 1 to ${maxListLimit}`,
        parsePageSize,
        maxListLimit,
      ),
  ).action((flags: ListFlags) => list(flags));

  connectionOptions(
    instances
      .command('put-many <file>')
      .description(
        'register one instance per line of a JSON-lines file ({"id":"node-1","ignition":{…},…}: a PUT body with its id); ' +
          'prints one JSON line with its token per instance as each is registered, and stops at the first line that fails',
      )
      .option('--strict', 'refuse Ignition keys the spec does not have')
      .option(
        '--from-line <n>',
        'skip the lines before this one (to resume after a failure)',
        positiveLine,
        1,
      )
      .option(
        '--lines-per-request <n>',
        'lines sent in one request (each request is answered line by line, and the next sent after it ends)',
        parseLinesPerRequest,
        bulkBatchLines,
      ),
  ).action((file: string, flags: PutManyFlags) => putMany(file, flags));

  connectionOptions(
    instances
      .command('reserve <id>')
      .description(
        'create an instance with no config yet: its fetches answer 503 (retry) until a config is put or the deadline ' +
          'passes, then 404; prints its token, which the later put keeps',
      )
      .option('--deadline <iso>', 'wait until this ISO-8601 time (default: one hour from now)', parseDeadline)
      .option('--for <duration>', 'wait this long, e.g. 15m, 2h (at most 7d)', parseDuration)
      .option(
        '--ip <address>',
        'a source address of the instance, for the metadata routes (repeat for more)',
        collect,
      ),
  ).action((id: string, flags: ReserveFlags) => reserve(id, flags));

  connectionOptions(
    instances
      .command('revoke <id>')
      .description('issue a new token for the same config; the old token stops working at once'),
  ).action(async (id: string, flags: ConnectionFlags) => {
    const response = await adminClient(flags).request(
      'POST',
      `/v1/instances/${encodeURIComponent(id)}/revoke`,
    );
    printToken((await response.json()) as { token: string });
    process.stderr.write('The token is shown only this once.\n');
  });
}
