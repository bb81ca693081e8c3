/**
 * Errors carry intent: the handlers decide between "acknowledge and report" and "retry" by class alone,
 * never by parsing messages.
 */
export class PermanentError extends Error {
  /** A stable, machine-readable reason (e.g. `bad-signature`, `malformed-message`). */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
    this.code = code;
  }
}

/** Retried through SQS partial batch failures, then dead-lettered: network, throttling, 5xx. */
export class TransientError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
    this.code = code;
  }
}

/** A bad deployment or config file: thrown once at start so nothing runs half-configured. */
export class ConfigError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-config', message, options);
    this.name = 'ConfigError';
  }
}

export function isTransient(error: unknown): error is TransientError {
  return error instanceof TransientError;
}

/** Human-readable message of anything thrown, including the chain of causes. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      // Wrappers often quote their cause already; saying it twice only makes logs harder to read.
      if (!parts.some((part) => part.includes(current instanceof Error ? current.message : ''))) {
        parts.push(current.message);
      }
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(': ');
}
