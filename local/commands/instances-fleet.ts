import { createReadStream } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import * as z from 'zod';
import { ConfigError, PermanentError, TransientError } from '../../shared/errors.ts';
import {
  InvalidAdminQueryError,
  maxListLimit,
  maxReservationMs,
  parseLimit,
  parsePrefix,
} from '../../shared/instances/admin.ts';
import { BulkLineError, parseBulkLine, splitJsonLines } from '../../shared/instances/bulk.ts';
import type { AdminClient } from '../http/admin-client.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';

/** Lines per bulk request: small enough for a Lambda's time and payload limits, big enough to batch. */
export const bulkBatchLines = 100;
/** Bytes per bulk request, below API Gateway's and Lambda's 6 MB payload limit. */
export const bulkBatchBytes = 4 * 1024 * 1024;

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

interface ListedInstance {
  id: string;
  state: string;
  kind?: string;
  reservedUntil?: string;
  ips: string[];
  updatedAt: string;
}

/** Every page, in id order: the cursor is followed until the API says there is no more. */
export async function* listAll(
  client: AdminClient,
  prefix: string | undefined,
  pageSize = maxListLimit,
): AsyncGenerator<ListedInstance> {
  let cursor: string | undefined;
  for (let page = 0; page < 1_000_000; page++) {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (prefix !== undefined) query.set('prefix', prefix);
    if (cursor !== undefined) query.set('cursor', cursor);
    const response = await client.request('GET', `/v1/instances?${query}`);
    const answer = (await response.json()) as { instances: ListedInstance[]; next?: string };
    yield* answer.instances;
    if (answer.next === undefined) return;
    cursor = answer.next;
  }
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

interface Batch {
  text: string;
  /** File line of each line sent, by its position in the request (1-based there). */
  fileLines: number[];
  ids: string[];
}

/** Reads the file as it goes, checking each line's JSON and id before anything is sent. */
async function* batches(file: string, fromLine: number): AsyncGenerator<Batch> {
  const seen = new Set<string>();
  let batch: Batch = { text: '', fileLines: [], ids: [] };
  try {
    for await (const entry of splitJsonLines(createReadStream(file))) {
      if (entry.line < fromLine) continue;
      const { id } = parseBulkLine(entry);
      if (seen.has(id)) {
        throw new BulkLineError(entry.line, [
          { path: '$.id', message: `"${id}" is on an earlier line; a second PUT would revoke its token` },
        ]);
      }
      seen.add(id);
      const size = Buffer.byteLength(entry.text) + 1;
      if (
        batch.fileLines.length >= bulkBatchLines ||
        (batch.text !== '' && batch.text.length + size > bulkBatchBytes)
      ) {
        yield batch;
        batch = { text: '', fileLines: [], ids: [] };
      }
      batch.text += `${entry.text}\n`;
      batch.fileLines.push(entry.line);
      batch.ids.push(id);
    }
  } catch (error) {
    if (error instanceof BulkLineError) {
      throw new ConfigError(`${file}: ${error.message}; nothing from this line on was sent`);
    }
    if ((error as NodeJS.ErrnoException).code !== undefined && !(error instanceof PermanentError)) {
      throw new ConfigError(`cannot read ${file}`, { cause: error });
    }
    throw error;
  }
  if (batch.fileLines.length > 0) yield batch;
}

/** The answer's lines, parsed as they arrive. */
async function* answerLines(response: Response): AsyncGenerator<Record<string, unknown>> {
  const body = response.body;
  if (body === null) return;
  const reader = body.getReader();
  const chunks = (async function* () {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  })();
  for await (const entry of splitJsonLines(chunks)) yield JSON.parse(entry.text) as Record<string, unknown>;
}

interface PutManyFlags extends ConnectionFlags {
  strict?: boolean;
  fromLine: number;
}

function failedAt(file: string, fileLine: number | undefined, detail: string, registered: number): string {
  const where = fileLine === undefined ? 'the next line' : `line ${fileLine}`;
  return (
    `${file}: ${where} failed: ${detail}\n` +
    `${registered} instance${registered === 1 ? ' is' : 's are'} registered (each printed above with its token); ` +
    `nothing from ${where} on was. Fix it and run again with --from-line ${fileLine ?? 'N'}`
  );
}

async function putMany(file: string, flags: PutManyFlags): Promise<void> {
  const client = adminClient(flags);
  const path = `/v1/instances${flags.strict === true ? '?strict=true' : ''}`;
  let registered = 0;
  for await (const batch of batches(file, flags.fromLine)) {
    let done = false;
    let lastLine: number | undefined;
    const response = await client.requestText('POST', path, batch.text, 'application/x-ndjson');
    try {
      for await (const answer of answerLines(response)) {
        if (answer.done === true) {
          done = true;
          break;
        }
        const at = typeof answer.line === 'number' ? batch.fileLines[answer.line - 1] : undefined;
        const error = answer.error as
          | { code?: string; message?: string; issues?: { path: string; message: string }[] }
          | undefined;
        if (error !== undefined) {
          const issues = (error.issues ?? []).map((issue) => `\n  ${issue.path}: ${issue.message}`).join('');
          const message = failedAt(file, at, `${error.message ?? 'refused'}${issues}`, registered);
          // A line the API could not store for now (ledger or store down) is worth a retry; a bad one is not.
          if (error.code === 'unavailable' || error.code === 'internal') {
            throw new TransientError('bulk-line-failed', message);
          }
          throw new PermanentError('bulk-line-failed', message);
        }
        lastLine = at;
        registered++;
        process.stdout.write(`${JSON.stringify({ ...answer, line: at })}\n`);
      }
    } catch (error) {
      if (error instanceof PermanentError || error instanceof TransientError) throw error;
      throw new TransientError('bulk-cut', cutMessage(file, lastLine, registered), { cause: error });
    }
    if (!done) throw new TransientError('bulk-cut', cutMessage(file, lastLine, registered));
  }
  process.stderr.write(
    `${registered} instance${registered === 1 ? '' : 's'} registered; the tokens above are shown only this once.\n`,
  );
}

function cutMessage(file: string, lastLine: number | undefined, registered: number): string {
  return (
    `${file}: the answer stopped early; ${registered} instances are registered (printed above), ` +
    `up to ${lastLine === undefined ? 'no line of this batch' : `line ${lastLine}`}. The line after it may or may ` +
    'not be: check it with "cldist instances get", then run again with --from-line'
  );
}

function parsePageSize(value: string): number {
  try {
    return parseLimit(value);
  } catch (error) {
    if (error instanceof InvalidAdminQueryError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

function positiveLine(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new InvalidArgumentError('expected a line number from 1');
  return Number(value);
}

interface DeleteFlags extends ConnectionFlags {
  prefix?: string;
  yes?: boolean;
}

/** `delete --prefix P`: without `--yes`, only says what would go. */
export async function deleteByPrefix(prefix: string, flags: DeleteFlags): Promise<void> {
  const client = adminClient(flags);
  if (flags.yes !== true) {
    const sample: string[] = [];
    let count = 0;
    for await (const instance of listAll(client, prefix)) {
      count++;
      if (sample.length < 5) sample.push(instance.id);
    }
    process.stdout.write(
      `${count} instance${count === 1 ? '' : 's'} start with "${prefix}"${sample.length > 0 ? `: ${sample.join(', ')}${count > sample.length ? ', …' : ''}` : ''}\n`,
    );
    throw new ConfigError(`nothing was deleted; add --yes to delete ${count === 1 ? 'it' : 'them'}`);
  }
  let deleted = 0;
  const query = new URLSearchParams({ prefix, confirm: 'true', limit: '100' });
  for (let round = 0; round < 1_000_000; round++) {
    const response = await client.request('DELETE', `/v1/instances?${query}`);
    let more: boolean | undefined;
    for await (const answer of answerLines(response)) {
      if (answer.error !== undefined) {
        const error = answer.error as { message?: string };
        throw new TransientError(
          'bulk-delete-failed',
          `${deleted} deleted, then: ${error.message ?? 'failed'}; run again`,
        );
      }
      if (answer.done === true) more = answer.more === true;
      else {
        deleted++;
        process.stdout.write(`deleted ${String(answer.id)}\n`);
      }
    }
    if (more === undefined)
      throw new TransientError('bulk-cut', `${deleted} deleted, then the answer stopped; run again`);
    if (!more) break;
  }
  process.stderr.write(`${deleted} instance${deleted === 1 ? '' : 's'} deleted\n`);
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
  ).action(async (id: string, flags: ReserveFlags) => {
    if (flags.deadline !== undefined && flags.for !== undefined) {
      throw new ConfigError('give --deadline or --for, not both');
    }
    const deadline =
      flags.deadline ??
      (flags.for === undefined ? undefined : new Date(Date.now() + flags.for).toISOString());
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
  });

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
