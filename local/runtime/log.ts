export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One event of the runner: `event` is a stable dotted name (`poll.origin_unreachable`) a script can match on. */
export interface LogRecord {
  level: LogLevel;
  time: string;
  event: string;
  [field: string]: unknown;
}

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** `json`: one JSON object per line, for journald and scripts; `pretty`: short lines for a person at a terminal. */
  format: 'json' | 'pretty';
  /** Where finished lines go (without the newline), so progress bars can interleave them cleanly. */
  write: (line: string) => void;
  minLevel?: LogLevel;
  clock?: () => Date;
  /** Every record, as structured data, e.g. for tests that wait on an event. */
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

/**
 * A deliberately tiny structured logger: the runner has one process and one sink, so the Lambda-shaped
 * loggers (context injection, sampling) would add nothing but indirection.
 */
export function createLogger(options: LoggerOptions): Logger {
  const min = rank[options.minLevel ?? 'info'];
  const clock = options.clock ?? (() => new Date());
  const log = (level: LogLevel, event: string, fields: Record<string, unknown> = {}): void => {
    const record: LogRecord = { level, time: clock().toISOString(), event };
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) record[key] = plain(value);
    }
    options.onRecord?.(record);
    if (rank[level] < min) return;
    if (options.format === 'json') {
      options.write(JSON.stringify(record));
      return;
    }
    const rest = Object.entries(record)
      .filter(([key]) => key !== 'level' && key !== 'time' && key !== 'event')
      .map(([key, value]) => `${key}=${prettyValue(value)}`)
      .join(' ');
    const tag = level === 'info' ? '' : ` ${level.toUpperCase()}`;
    options.write(`${record.time.slice(11, 19)}${tag} ${event}${rest === '' ? '' : ` ${rest}`}`);
  };
  return {
    log,
    debug: (event, fields) => log('debug', event, fields),
    info: (event, fields) => log('info', event, fields),
    warn: (event, fields) => log('warn', event, fields),
    error: (event, fields) => log('error', event, fields),
  };
}

/** A logger that drops everything: for library callers and tests that do not care. */
export const silentLogger: Logger = createLogger({ format: 'json', write: () => {}, minLevel: 'error' });
