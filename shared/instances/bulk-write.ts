import { performance } from 'node:perf_hooks';
import { PermanentError, TransientError } from '../errors.ts';
import type { InstanceServiceDeps } from './deps.ts';
import { InstanceBatchConflictError, InstanceConflictError } from './errors.ts';
import type { ValidationIssue } from './ignition.ts';
import {
  maxPutMs,
  type PreparedPut,
  type PutInstanceResult,
  putPrepared,
  recordFor,
  resultOf,
  writeBody,
} from './put-config.ts';
import type { InstanceRecord } from './types.ts';

export type BulkPutItem =
  | { line: number; id: string; result: PutInstanceResult }
  | {
      line: number;
      id?: string;
      error: { code: string; message: string; issues?: ValidationIssue[] };
    };

export interface PreparedLine {
  line: number;
  put: PreparedPut;
}

export interface LineFailure {
  line: number;
  id?: string;
  error: PermanentError | TransientError;
}

/** Up to one batch of checked lines, and the failing line that ended it, if one did. */
export interface Batch {
  lines: PreparedLine[];
  failure?: LineFailure;
  /** The source has no more lines. */
  last: boolean;
}

export function isKnown(error: unknown): error is PermanentError | TransientError {
  return error instanceof PermanentError || error instanceof TransientError;
}

/**
 * Body writes in flight at once for one batch. A local folder fsyncs every body and its folder on libuv's
 * threads (four by default), which the ledger thread's LevelDB shares: more at once only queue there.
 */
const bodyWriteConcurrency = 4;

/** A line's record, built over the record it replaces, with the token it issues. */
interface LineWrite {
  line: number;
  put: PreparedPut;
  before: InstanceRecord | undefined;
  record: InstanceRecord;
  token?: string;
}

/**
 * What a batch commits, in line order: runs of lines whose bodies are written and whose records go in one
 * transaction, and lines that claim or give up source addresses, which go through the single PUT on their
 * own (an address claim is a conditional write of its own item, undone if the record write fails).
 */
type Step =
  | { kind: 'run'; writes: LineWrite[]; bodiesStartedAt: number }
  | { kind: 'single'; entry: PreparedLine; before: InstanceRecord | undefined };

/** A batch ready to commit; `failure` is the line that ends the run once every step before it is done. */
export interface StagedBatch {
  steps: Step[];
  failure?: LineFailure;
  last: boolean;
}

function holdsAddresses(put: PreparedPut, previous: InstanceRecord | undefined): boolean {
  return (put.data.ips?.length ?? 0) > 0 || (previous?.params?.ips.length ?? 0) > 0;
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

function groupSteps(lines: PreparedLine[], previous: Map<string, InstanceRecord>, now: Date): Step[] {
  const steps: Step[] = [];
  let run: LineWrite[] = [];
  for (const entry of lines) {
    const before = previous.get(entry.put.id);
    if (holdsAddresses(entry.put, before)) {
      if (run.length > 0) steps.push({ kind: 'run', writes: run, bodiesStartedAt: 0 });
      run = [];
      steps.push({ kind: 'single', entry, before });
    } else {
      run.push({ line: entry.line, put: entry.put, before, ...recordFor(entry.put, before, now, false) });
    }
  }
  if (run.length > 0) steps.push({ kind: 'run', writes: run, bodiesStartedAt: 0 });
  return steps;
}

/**
 * Everything of a batch that may run while the batch before it commits: reading the records it replaces
 * (its ids are on no earlier line, so the earlier commit cannot change them) and writing its bodies, each
 * under a key no record points at yet. If that fails, the batch commits what comes before the failing step.
 */
export async function stageBatch(batch: Batch, deps: InstanceServiceDeps): Promise<StagedBatch> {
  const { lines, last } = batch;
  const failed = (entry: { line: number; put: PreparedPut }, error: LineFailure['error']) => ({
    line: entry.line,
    id: entry.put.id,
    error,
  });
  const first = lines[0];
  if (first === undefined) return { steps: [], last, ...(batch.failure ? { failure: batch.failure } : {}) };
  let previous: Map<string, InstanceRecord>;
  try {
    previous = await deps.instances.getMany(lines.map(({ put }) => put.id));
  } catch (error) {
    if (!isKnown(error)) throw error;
    return { steps: [], failure: failed(first, error), last: true };
  }
  const steps = groupSteps(lines, previous, deps.clock());
  for (const [at, step] of steps.entries()) {
    if (step.kind !== 'run') continue;
    step.bodiesStartedAt = performance.now();
    try {
      await forEachBounded(step.writes, bodyWriteConcurrency, (write) => writeBody(write.put, deps));
    } catch (error) {
      if (!isKnown(error)) throw error;
      return { steps: steps.slice(0, at), failure: failed(step.writes[0] as LineWrite, error), last: true };
    }
  }
  return { steps, last, ...(batch.failure ? { failure: batch.failure } : {}) };
}

/**
 * One run's records in one transaction. On a conflict the transaction wrote none of them, so the lines
 * before the first conflicting one are written again on their own, and the run ends exactly at that line.
 */
async function commitRun(
  writes: LineWrite[],
  bodiesStartedAt: number,
  deps: InstanceServiceDeps,
): Promise<{ count: number; failure?: LineFailure }> {
  try {
    if (performance.now() - bodiesStartedAt > maxPutMs) {
      throw new TransientError('put-too-slow', 'the config store was too slow; nothing was changed, retry');
    }
    await deps.instances.putBatch(writes.map((write) => ({ record: write.record, replaces: write.before })));
    return { count: writes.length };
  } catch (error) {
    if (!isKnown(error)) throw error;
    const conflict = error instanceof InstanceBatchConflictError;
    const first = conflict ? (error.positions[0] ?? 0) : 0;
    const at = writes[first] as LineWrite;
    const failure = {
      line: at.line,
      id: at.put.id,
      error: conflict ? new InstanceConflictError(at.put.id) : error,
    };
    if (first === 0) return { count: 0, failure };
    const retried = await commitRun(writes.slice(0, first), bodiesStartedAt, deps);
    return retried.failure === undefined ? { count: first, failure } : retried;
  }
}

/** Commits a staged batch in order, yielding each line once its record is written. */
export async function* commitBatch(
  batch: StagedBatch,
  deps: InstanceServiceDeps,
): AsyncGenerator<BulkPutItem, LineFailure | undefined> {
  for (const step of batch.steps) {
    if (step.kind === 'single') {
      const { entry, before } = step;
      try {
        const result = await putPrepared(entry.put, before, { newToken: false, now: deps.clock() }, deps);
        yield { line: entry.line, id: entry.put.id, result };
      } catch (error) {
        if (!isKnown(error)) throw error;
        return { line: entry.line, id: entry.put.id, error };
      }
      continue;
    }
    const { count, failure } = await commitRun(step.writes, step.bodiesStartedAt, deps);
    for (const write of step.writes.slice(0, count)) {
      yield {
        line: write.line,
        id: write.put.id,
        result: resultOf(write.before, write.token, write.record, write.put.prepared),
      };
    }
    if (failure !== undefined) return failure;
  }
  return batch.failure;
}
