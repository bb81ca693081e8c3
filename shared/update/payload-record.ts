/**
 * The contract between the mirror side of the update service (which verifies update payloads and
 * records their facts) and the Omaha side (which names them in update answers). Omaha answers carry
 * the size and hashes of each package, so the mirror records them once, in the streaming pass that
 * verifies the payload, and the endpoint never reads a payload again.
 */

/** The main update payload's file name, as update_engine requests it. */
export const MAIN_UPDATE_PAYLOAD = 'flatcar_production_update.gz';

/** Folder of the mirror store under which update payloads live, apart from the release images. */
export const UPDATE_PAYLOAD_PREFIX = 'update';

/** One verified update payload, as an Omaha answer needs it. */
export interface UpdatePayloadRecord {
  readonly board: string;
  readonly version: string;
  /** `flatcar_production_update.gz`, or `oem-<id>.gz` for an OEM or extension payload. */
  readonly name: string;
  /** Object key in the mirror store (see {@link updatePayloadKey}). */
  readonly key: string;
  readonly size: number;
  /** SHA-1 of the payload bytes, base64: Omaha's `hash` attribute. */
  readonly sha1Base64: string;
  /** SHA-256 of the payload bytes, lower-case hex: Omaha's `hash_sha256` attribute. */
  readonly sha256Hex: string;
  /** ISO-8601 time the payload's embedded signature was checked. */
  readonly verifiedAt: string;
}

/** Read side used by the Omaha endpoint; only verified payloads are ever returned. */
export interface UpdatePayloadLookup {
  /** The verified payloads of one release, main payload first; empty when none is verified. */
  payloadsFor(board: string, version: string): Promise<readonly UpdatePayloadRecord[]>;
}

/** `update/<board>/<version>/<name>`: the same relative layout as Flatcar's update origin. */
export function updatePayloadKey(board: string, version: string, name: string): string {
  return `${UPDATE_PAYLOAD_PREFIX}/${board}/${version}/${name}`;
}
