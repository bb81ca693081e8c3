import { LogFormatter, LogItem, Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';
import type { MirrorLogger } from '../../shared/mirror/deps.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One event of the runner: `event` is a stable dotted name (`poll.origin_unreachable`) a script can match on. */
export interface LogRecord {
  level: LogLevel;
  time: string;
  event: string;
  [field: string]: unknown;
}

/**
 * The one logger port (`MirrorLogger`, the part of a Powertools Logger the cores use) with a level chosen at
 * run time; `createLogger` gives a Powertools Logger.
 */
export interface Logger extends MirrorLogger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** `json`: one JSON object per line, for journald and scripts; `pretty`: short lines for a person at a terminal. */
  format: 'json' | 'pretty';
  /** Where finished lines go (without the newline), so progress bars can interleave them cleanly. */
  write: (line: string) => void;
  minLevel?: LogLevel;
  clock?: () => Date;
  /** Every record, as structured data, whatever `minLevel` says, e.g. for tests that wait on an event. */
  onRecord?: (record: LogRecord) => void;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function prettyValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** Errors do not survive JSON.stringify; keep their name, message and causes. */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined) out.cause = plain(value.cause);
    return out;
  }
  return value;
}

function levelOf(name: unknown): LogLevel {
  const level = String(name).toLowerCase();
  if (level === 'debug' || level === 'info' || level === 'warn' || level === 'error') return level;
  return level === 'critical' ? 'error' : 'info';
}

/** The runner's record shape, `{ level, time, event, ...fields }`, instead of the Lambda one. */
class RecordFormatter extends LogFormatter {
  constructor(private readonly clock: () => Date) {
    super();
  }

  formatAttributes(attributes: UnformattedAttributes, additional: LogAttributes): LogItem {
    const item = new LogItem({
      attributes: {
        level: levelOf(attributes.logLevel),
        time: this.clock().toISOString(),
        event: attributes.message,
      },
    });
    for (const [key, value] of Object.entries(additional)) {
      if (value !== undefined) item.addAttributes({ [key]: plain(value) });
    }
    return item;
  }
}

function prettyLine(record: LogRecord): string {
  const rest = Object.entries(record)
    .filter(([key]) => key !== 'level' && key !== 'time' && key !== 'event')
    .map(([key, value]) => `${key}=${prettyValue(value)}`)
    .join(' ');
  const tag = record.level === 'info' ? '' : ` ${record.level.toUpperCase()}`;
  return `${record.time.slice(11, 19)}${tag} ${record.event}${rest === '' ? '' : ` ${rest}`}`;
}

/**
 * The Lambda functions' Powertools Logger, printing to the runner's sink: one JSON object per line, or a
 * short text line on a terminal. It takes every level and filters at print, so `onRecord` sees debug
 * events too.
 */
class RunnerLogger extends PowertoolsLogger implements Logger {
  /** Unset while Powertools' own constructor runs (it may log); nothing is printed then. */
  private sink: LoggerOptions | undefined;

  constructor(options: LoggerOptions) {
    super({ logLevel: 'DEBUG', logFormatter: new RecordFormatter(options.clock ?? (() => new Date())) });
    this.sink = options;
  }

  log(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
    this[level](event, fields);
  }

  protected override printLog(_logLevel: number, log: LogItem): void {
    const options = this.sink;
    if (options === undefined) return;
    log.prepareForPrint();
    const record = log.getAttributes() as LogRecord;
    options.onRecord?.(record);
    if (rank[record.level] < rank[options.minLevel ?? 'info']) return;
    options.write(options.format === 'json' ? JSON.stringify(record) : prettyLine(record));
  }
}

export function createLogger(options: LoggerOptions): Logger {
  return new RunnerLogger(options);
}

/** A logger that drops everything: for library callers and tests that do not care. */
export const silentLogger: Logger = createLogger({ format: 'json', write: () => {}, minLevel: 'error' });
