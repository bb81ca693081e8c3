import { PermanentError } from '../errors.ts';

/**
 * Why a signature was refused. Each reason is its own code so alerts and tests can tell them apart.
 */
export type SignatureFailure =
  | 'garbage-signature'
  | 'unknown-key'
  | 'untrusted-key'
  | 'tampered'
  | 'truncated'
  | 'future-signature'
  | 'weak-hash'
  | 'subkey-revoked-compromised'
  | 'subkey-revoked-before-signing'
  | 'key-not-valid-at-signing'
  | 'not-signing-capable';

/** The message starts with the reason, so a log line or the CLI's error names it without the code. */
export class SignatureError extends PermanentError {
  readonly reason: SignatureFailure;
  /** For `unknown-key`: the issuer as the signature names it (16 hex digits, or a fingerprint). */
  readonly issuer?: string;
  /** For `unknown-key`: the version of the trust that did not know the issuer. */
  readonly trustVersion?: string;
  constructor(
    reason: SignatureFailure,
    message: string,
    options?: { cause?: unknown; issuer?: string; trustVersion?: string },
  ) {
    super(`bad-signature:${reason}`, `bad signature (${reason}): ${message}`, options);
    this.name = 'SignatureError';
    this.reason = reason;
    if (options?.issuer !== undefined) this.issuer = options.issuer;
    if (options?.trustVersion !== undefined) this.trustVersion = options.trustVersion;
  }
}

/** What a good signature proves; stored per artifact in release.json. */
export interface VerifiedSignature {
  /** Fingerprint of the (sub)key that made the signature, upper-case hex. */
  signingKeyFingerprint: string;
  /** Fingerprint of the trusted primary key it is bound to. */
  primaryKeyFingerprint: string;
  signatureCreated: Date;
  /** e.g. `SHA512`. */
  hashAlgorithm: string;
  /** Bytes that went through the verifier. */
  bytes: number;
  /** Plain SHA-512 of those bytes, hex: computed in the same pass, for release.json and DIGESTS checks. */
  sha512: string;
}

export interface VerifyOptions {
  /** The clock; signatures dated after `now + maxClockSkewSeconds` are refused. */
  now: Date;
  maxClockSkewSeconds: number;
  /** If known (Content-Length), fewer bytes than this is reported as `truncated`, not `tampered`. */
  expectedBytes?: number;
}

export interface SigningKeyStatus {
  primaryKeyFingerprint: string;
  signingKeyFingerprint: string;
  /** undefined: never expires. */
  expires?: Date;
}

export interface KeyringStatus {
  /** The newest signing subkey valid now, per trusted primary. */
  current: SigningKeyStatus[];
  /** Those of `current` that expire within the warning window. */
  expiringSoon: SigningKeyStatus[];
}
