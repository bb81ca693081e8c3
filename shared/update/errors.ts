import { PermanentError } from '../errors.ts';

/** Why an update payload was refused; each is its own code so alerts and tests can tell them apart. */
export type PayloadRefusal =
  /** Not a CrAU payload this verifier reads: magic, version, manifest or signature blob. */
  | 'crau-format'
  /** Shorter than its own manifest says, with the transfer complete: the origin serves a cut file. */
  | 'crau-truncated'
  /** Bytes after the signature blob, which no signature covers. */
  | 'crau-trailing-data'
  /** No signature in the blob verifies with any configured update payload key. */
  | 'crau-signature'
  /** The origin's `.sha256` names other bytes. */
  | 'sha256-mismatch'
  /** The origin's `.sha256` is not a SHA-256 checksum file. */
  | 'sha256-unreadable';

/**
 * A payload that must never be served. Permanent: the same bytes fail the same way on every retry. The
 * message starts with the reason, so a log line or an alert names it without the code.
 */
export class UpdatePayloadRefusedError extends PermanentError {
  readonly reason: PayloadRefusal;
  constructor(reason: PayloadRefusal, message: string, options?: { cause?: unknown }) {
    super(`update-payload:${reason}`, `update payload refused (${reason}): ${message}`, options);
    this.name = 'UpdatePayloadRefusedError';
    this.reason = reason;
  }
}

/** The bytes are not a well-formed CrAU payload (header, manifest, or signature blob). */
export class CrauFormatError extends UpdatePayloadRefusedError {
  constructor(
    message: string,
    reason: 'crau-format' | 'crau-truncated' | 'crau-trailing-data' = 'crau-format',
    options?: { cause?: unknown },
  ) {
    super(reason, message, options);
    this.name = 'CrauFormatError';
  }
}

/** A well-formed payload whose embedded RSA signature no configured key verifies. */
export class CrauSignatureError extends UpdatePayloadRefusedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crau-signature', message, options);
    this.name = 'CrauSignatureError';
  }
}

/** The checksum the origin publishes beside the payload disagrees with the payload, or cannot be read. */
export class PayloadChecksumError extends UpdatePayloadRefusedError {
  constructor(reason: 'sha256-mismatch' | 'sha256-unreadable', message: string) {
    super(reason, message);
    this.name = 'PayloadChecksumError';
  }
}
