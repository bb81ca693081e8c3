import { performance } from 'node:perf_hooks';
import type { CldistConfig } from '../config.ts';
import { PermanentError, TransientError } from '../errors.ts';
import { BulkLineError, maxBulkLines, parseBulkLine, type TextLine } from './bulk.ts';
import type { InstanceServiceDeps } from './deps.ts';
import { InstanceBatchConflictError, InstanceConflictError } from './errors.ts';
import type { ValidationIssue } from './ignition.ts';
import {
  maxPutMs,
  type PreparedPut,
  type PutInstanceResult,
  preparePut,
  putPrepared,
  recordFor,
  resultOf,
  writeBody,
} from './put-config.ts';
import { maxRecordBatch } from './record-batch.ts';
import type { InstanceRecord, RecordWrite } from './types.ts';

/** Config bytes per batch, so a batch of large configs stays well inside a transaction's 4 MB. */
const maxBatchBodyBytes = 2 * 1024 * 1024;
/** Body writes in flight at once for one batch (the config store is a folder or S3). */
const bodyWriteConcurrency = 16;
/** Lines checked between two turns of the event loop, so fetches are answered during a bulk load. */
const linesPerTurn = 25;

export type BulkPutItem =
  | { line: number; id: string; result: PutInstanceResult }
  | {
      line: number;
      id?: string;
      error: { code: string; message: string; issues?: ValidationIssue[] };
    };

interface PreparedLine {
  line: number;
  put: PreparedPut;
}

interface LineFailure {
  line: number;
  id?: string;
  error: PermanentError | TransientError;
}

/** Up to one batch of checked lines, and the failing line that ended it, if one did. */
interface Batch {
  lines: PreparedLine[];
  failure?: LineFailure;
  /** The source has no more lines. */
  last: boolean;
}

function isKnown(error: unknown): error is PermanentError | TransientError {
  return error instanceof PermanentError || error instanceof TransientError;
}

function failureItem({ line, id, error }: LineFailure): BulkPutItem {
  const issues = (error as { issues?: ValidationIssue[] }).issues;
  return {
    line,
    ...(id === undefined ? {} : { id }),
    error: {
      code: error instanceof TransientError ? 'unavailable' : error.code,
      message: error instanceof TransientError ? `${error.message}; retry from this line` : error.message,
      ...(issues === undefined ? {} : { issues }),
    },
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Reads and checks lines until a batch is full, the source ends, or a line fails (which ends the batch
 * and the run). Checking is all CPU and touches nothing, so a batch read ahead and then dropped (because
 * the batch before it failed) leaves no trace.
 */
async function readBatch(
  source: AsyncIterator<TextLine>,
  state: { seen: Set<string>; lastLine: number },
  options: { strict: boolean },
  deps: Pick<InstanceServiceDeps, 'clock'>,
  config: CldistConfig,
): Promise<Batch> {
  const lines: PreparedLine[] = [];
  let bytes = 0;
  const now = deps.clock();
  while (lines.length < maxRecordBatch && bytes < maxBatchBodyBytes) {
    let id: string | undefined;
    let line = state.lastLine + 1;
    try {
      const next = await source.next();
      if (next.done === true) return { lines, last: true };
      line = next.value.line;
      state.lastLine = line;
      if (state.seen.size >= maxBulkLines) {
        throw new BulkLineError(line, [
          { path: '$', message: `a request takes at most ${maxBulkLines} lines; send the rest in another` },
        ]);
      }
      const parsed = parseBulkLine(next.value);
      id = parsed.id;
      if (state.seen.has(id)) {
        throw new BulkLineError(line, [
          { path: '$.id', message: `"${id}" is on an earlier line; a second PUT would revoke its token` },
        ]);
      }
      state.seen.add(id);
      const put = preparePut({ id, body: parsed.body, strict: options.strict }, now, config);
      lines.push({ line, put });
      bytes += put.prepared.body.byteLength;
    } catch (error) {
      if (!isKnown(error)) throw error;
      const at = error instanceof BulkLineError ? error.line : line;
      return { lines, failure: { line: at, ...(id === undefined ? {} : { id }), error }, last: true };
    }
    if (lines.length % linesPerTurn === 0) await nextTurn();
  }
  return { lines, last: false };
}

/** Runs `write` over `items`, at most `limit` at a time; the first failure is thrown once all settle. */
async function forEachBounded<T>(items: readonly T[], limit: number, write: (item: T) => Promise<void>) {
  let next = 0;
  const failures: unknown[] = [];
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await write(item).catch((error: unknown) => failures.push(error));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failures.length > 0) throw failures[0];
}

/** Lines whose PUT claims or gives up source addresses: those take `putPrepared`'s claim and release. */
function holdsAddresses(put: PreparedPut, previous: InstanceRecord | undefined): boolean {
  return (put.data.ips?.length ?? 0) > 0 || (previous?.params?.ips.length ?? 0) > 0;
}

/**
 * Writes one run of lines that claim no addresses: their bodies, then their records in one transaction.
 * On a conflict, the lines before the first conflicting one are written again on their own (the
 * transaction wrote none of them), so the run ends exactly at that line. Answers the results in order and
 * the failure that stopped it, if one did.
 */
async function writeRun(
  run: PreparedLine[],
  previous: Map<string, InstanceRecord>,
  now: Date,
  deps: InstanceServiceDeps,
): Promise<{ done: BulkPutItem[]; failure?: LineFailure }> {
  const startedAt = performance.now();
  try {
    await forEachBounded(run, bodyWriteConcurrency, ({ put }) => writeBody(put, deps));
  } catch (error) {
    if (!isKnown(error)) throw error;
    return { done: [], failure: { line: run[0]?.line ?? 0, id: run[0]?.put.id ?? '', error } };
  }
  const writes = run.map(({ put }) => {
    const before = previous.get(put.id);
    return { put, before, ...recordFor(put, before, now, false) };
  });
  let count = writes.length;
  let failure: LineFailure | undefined;
  for (;;) {
    try {
      if (performance.now() - startedAt > maxPutMs) {
        throw new TransientError('put-too-slow', 'the config store was too slow; nothing was changed, retry');
      }
      const entries: RecordWrite[] = writes
        .slice(0, count)
        .map((w) => ({ record: w.record, replaces: w.before }));
      await deps.instances.putBatch(entries);
      break;
    } catch (error) {
      if (!isKnown(error)) throw error;
      const first = error instanceof InstanceBatchConflictError ? (error.positions[0] ?? 0) : 0;
      const at = run[first] as PreparedLine;
      failure = {
        line: at.line,
        id: at.put.id,
        error: error instanceof InstanceBatchConflictError ? new InstanceConflictError(at.put.id) : error,
      };
      count = first;
      if (count === 0) break;
    }
  }
  const done = writes.slice(0, count).map(
    (w, i): BulkPutItem => ({
      line: (run[i] as PreparedLine).line,
      id: w.put.id,
      result: resultOf(w.before, w.token, w.record, w.put.prepared),
    }),
  );
  return { done, ...(failure === undefined ? {} : { failure }) };
}

/** Writes a batch in order: runs of plain lines together, a line that holds addresses on its own. */
async function* writeBatch(
  lines: PreparedLine[],
  deps: InstanceServiceDeps,
): AsyncGenerator<BulkPutItem, LineFailure | undefined> {
  if (lines.length === 0) return undefined;
  let previous: Map<string, InstanceRecord>;
  try {
    previous = await deps.instances.getMany(lines.map(({ put }) => put.id));
  } catch (error) {
    if (!isKnown(error)) throw error;
    const first = lines[0] as PreparedLine;
    return { line: first.line, id: first.put.id, error };
  }
  const now = deps.clock();
  let run: PreparedLine[] = [];
  const flush = async function* (): AsyncGenerator<BulkPutItem, LineFailure | undefined> {
    const written = await writeRun(run, previous, now, deps);
    run = [];
    yield* written.done;
    return written.failure;
  };
  for (const entry of lines) {
    const before = previous.get(entry.put.id);
    if (!holdsAddresses(entry.put, before)) {
      run.push(entry);
      continue;
    }
    if (run.length > 0) {
      const failure = yield* flush();
      if (failure !== undefined) return failure;
    }
    try {
      const result = await putPrepared(entry.put, before, { newToken: false, now }, deps);
      yield { line: entry.line, id: entry.put.id, result };
    } catch (error) {
      if (!isKnown(error)) throw error;
      return { line: entry.line, id: entry.put.id, error };
    }
  }
  return run.length > 0 ? yield* flush() : undefined;
}

/**
 * Registers one instance per line, in order. Lines are checked a batch ahead while the batch before is
 * written, and a batch's records go to the ledger together (one transaction: all of them or none), each
 * yielded once its batch is written, so whatever a caller has been told is registered. The first line that
 * fails is yielded as an error and ends the run: every line before it is registered, nothing from it on
 * is, so the caller knows exactly where to resume. Errors no caller can act on (bugs) are thrown.
 */
export async function* putMany(
  lines: AsyncIterable<TextLine>,
  options: { strict: boolean },
  deps: InstanceServiceDeps,
  config: CldistConfig,
): AsyncGenerator<BulkPutItem> {
  const source = lines[Symbol.asyncIterator]();
  const state = { seen: new Set<string>(), lastLine: 0 };
  let ahead = readBatch(source, state, options, deps, config);
  try {
    for (;;) {
      const batch = await ahead;
      if (!batch.last) ahead = readBatch(source, state, options, deps, config);
      const failure = yield* writeBatch(batch.lines, deps);
      if (failure !== undefined) return yield failureItem(failure);
      if (batch.failure !== undefined) return yield failureItem(batch.failure);
      if (batch.last) return;
    }
  } finally {
    // A batch read ahead and not written (a failure, or the caller stopped) is dropped: checking wrote nothing.
    ahead.catch(() => undefined);
  }
}
