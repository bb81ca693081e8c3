import { type Keyring, keyringStatus } from '../verify/keyring.ts';
import { verifyDetached } from '../verify/verify.ts';
import type { SignatureChecker } from './deps.ts';

/** The cores' view of a loaded keyring; build a new one to swap in a rotated keyring. */
export function keyringChecker(keyring: Keyring): SignatureChecker {
  return {
    verify: (data, signature, options) => verifyDetached(data, signature, keyring, options),
    status: (now, warningDays) => keyringStatus(keyring, now, warningDays),
  };
}
