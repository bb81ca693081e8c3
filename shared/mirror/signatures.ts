import type { TrustedKeyring } from '../trust/trusted-keyring.ts';
import { type Keyring, keyringStatus } from '../verify/keyring.ts';
import { SignatureError } from '../verify/types.ts';
import { verifyDetached } from '../verify/verify.ts';
import type { SignatureChecker } from './deps.ts';

/** A fixed keyring (tests, benchmarks, one-shot commands): its trust never changes. */
export function keyringChecker(
  keyring: Keyring,
  location = 'the configured keyring files',
): SignatureChecker {
  const trust = { version: 'static', location };
  return {
    verify: async (data, signature, options) => {
      try {
        return await verifyDetached(data, signature, keyring, options);
      } catch (error) {
        throw withTrustVersion(error, trust.version);
      }
    },
    status: (now, warningDays) => keyringStatus(keyring, now, warningDays),
    refreshTrust: () => Promise.resolve(trust),
    trustLocation: location,
  };
}

function withTrustVersion(error: unknown, trustVersion: string): unknown {
  if (!(error instanceof SignatureError) || error.reason !== 'unknown-key') return error;
  return new SignatureError('unknown-key', error.message.replace(/^bad signature \(unknown-key\): /, ''), {
    cause: error.cause,
    trustVersion,
    ...(error.issuer === undefined ? {} : { issuer: error.issuer }),
  });
}

/**
 * The keyring that follows the trust source. A signer the loaded keyring does not know makes it read the
 * source again (rate-limited, single-flight, cheap when unchanged) before refusing: a warm function honours
 * a rotated key uploaded after it started. The data has not been read when `unknown-key` is decided, so the
 * second try streams it as the first would have.
 */
export function trustedChecker(trust: TrustedKeyring): SignatureChecker {
  return {
    async verify(data, signature, options) {
      const before = await trust.current();
      try {
        return await verifyDetached(data, signature, before.keyring, options);
      } catch (error) {
        if (!(error instanceof SignatureError) || error.reason !== 'unknown-key') throw error;
        const after = await trust.refresh('unknown-signer');
        if (after.keyring === before.keyring) throw withTrustVersion(error, after.version);
        try {
          return await verifyDetached(data, signature, after.keyring, options);
        } catch (again) {
          throw withTrustVersion(again, after.version);
        }
      }
    },
    async status(now, warningDays) {
      return keyringStatus((await trust.current()).keyring, now, warningDays);
    },
    async refreshTrust() {
      const snapshot = await trust.refresh('poll');
      return { version: snapshot.version, location: trust.location };
    },
    trustLocation: trust.location,
  };
}
