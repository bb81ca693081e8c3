import { type Keyring, loadKeyring } from '../../shared/verify/keyring.ts';
import type { SimOrigin } from './sim-origin.ts';

/** A keyring that trusts exactly the sim origin's key, as the real one trusts the Flatcar primary key. */
export function makeSimKeyring(
  origin: Pick<SimOrigin, 'publicKeyArmored' | 'primaryFingerprint'>,
): Promise<Keyring> {
  return loadKeyring([origin.publicKeyArmored], [origin.primaryFingerprint], ['the sim origin key']);
}
