import { createReadStream } from 'node:fs';
import { ConfigError, PermanentError, TransientError } from '../../shared/errors.ts';
import { maxListLimit } from '../../shared/instances/admin.ts';
import { BulkLineError, parseBulkLine, splitJsonLines } from '../../shared/instances/bulk.ts';
import type { AdminClient } from '../http/admin-client.ts';
import { adminClient, type ConnectionFlags } from './connection.ts';

/**
 * The client side of the JSON-lines routes: put-many reads its file as it goes and prints each instance's
 * token line as the API acknowledges it; delete --prefix deletes round by round.
 */

/**
 * Lines per bulk request by default: the API writes them 100 to a ledger transaction, so a request's own
 * cost is small beside its lines', and a request stays well inside a Lambda's time and payload limits.
 */
export const bulkBatchLines = 2000;
/** Bytes per bulk request, below API Gateway's and Lambda's 6 MB payload limit. */
export const bulkBatchBytes = 4 * 1024 * 1024;

export interface ListedInstance {
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

interface Batch {
  text: string;
  /** File line of each line sent, by its position in the request (1-based there). */
  fileLines: number[];
  ids: string[];
}

/** Reads the file as it goes, checking each line's JSON and id before anything is sent. */
async function* batches(file: string, fromLine: number, linesPerRequest: number): AsyncGenerator<Batch> {
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
        batch.fileLines.length >= linesPerRequest ||
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

export interface PutManyFlags extends ConnectionFlags {
  strict?: boolean;
  fromLine: number;
  linesPerRequest?: number;
}

function failedAt(file: string, fileLine: number | undefined, detail: string, registered: number): string {
  const where = fileLine === undefined ? 'the next line' : `line ${fileLine}`;
  return (
    `${file}: ${where} failed: ${detail}\n` +
    `${registered} instance${registered === 1 ? ' is' : 's are'} registered (each printed above with its token); ` +
    `nothing from ${where} on was. Fix it and run again with --from-line ${fileLine ?? 'N'}`
  );
}

export async function putMany(file: string, flags: PutManyFlags): Promise<void> {
  const client = adminClient(flags);
  const path = `/v1/instances${flags.strict === true ? '?strict=true' : ''}`;
  let registered = 0;
  for await (const batch of batches(file, flags.fromLine, flags.linesPerRequest ?? bulkBatchLines)) {
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

export interface DeleteFlags extends ConnectionFlags {
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
