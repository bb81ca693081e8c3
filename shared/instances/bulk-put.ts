import type { CldistConfig } from '../config.ts';
import { TransientError } from '../errors.ts';
import { BulkLineError, maxBulkLines, parseBulkLine, type TextLine } from './bulk.ts';
import {
  type Batch,
  type BulkPutItem,
  commitBatch,
  isKnown,
  type LineFailure,
  type PreparedLine,
  stageBatch,
} from './bulk-write.ts';
import type { InstanceServiceDeps } from './deps.ts';
import type { ValidationIssue } from './ignition.ts';
import { preparePut } from './put-config.ts';
import { maxRecordBatch } from './record-batch.ts';

/** Config bytes per batch, so a batch of large configs stays well inside a transaction's 4 MB. */
const maxBatchBodyBytes = 2 * 1024 * 1024;
/** Body writes in flight at once for one batch (the config store is a folder or S3). */
const _bodyWriteConcurrency = 16;
/** Lines checked between two turns of the event loop, so fetches are answered during a bulk load. */
const linesPerTurn = 25;

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

/**
 * Registers one instance per line, in order. The next batch is checked, its previous records read and its
 * bodies written while the batch before is committed, and a batch's records go to the ledger together (one
 * transaction: all of them or none), each yielded once its batch is written, so whatever a caller has been
 * told is registered. The first line that
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
  const ahead = () =>
    readBatch(source, state, options, deps, config).then((batch) => stageBatch(batch, deps));
  let staged = ahead();
  try {
    for (;;) {
      const batch = await staged;
      if (!batch.last) staged = ahead();
      const failure = yield* commitBatch(batch, deps);
      if (failure !== undefined) return yield failureItem(failure);
      if (batch.last) return;
    }
  } finally {
    // A batch staged and not committed (a failure, or the caller stopped) is dropped: its bodies are
    // referenced by no record, and the body sweep collects them.
    staged.catch(() => undefined);
  }
}
