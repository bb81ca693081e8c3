import { createHash } from 'node:crypto';

/**
 * The update origin's layout on the simulated origin, beside the release channels: each payload at
 * `/update/{board}/{version}/{name}`, as Flatcar's update server lays them out, with the `.sha256` file it
 * publishes beside each payload and, on request, a detached OpenPGP `.sig`. The payload bytes come from
 * the caller (a test's CrAU generator): the origin serves bytes, it does not build payloads.
 */

export const updateOriginPath = '/update';

export interface UpdatePayloadSpec {
  name: string;
  content: Uint8Array;
  /**
   * The `.sha256` beside the payload: `true` (default) publishes the right one in `sha256sum` format,
   * `false` none, a string that text as is (a wrong one, say).
   */
  sha256File?: boolean | string;
  /** Publish a detached OpenPGP `.sig` made with the origin's key. Default false. */
  openpgpSignature?: boolean;
}

export interface PublishUpdateOptions {
  board: string;
  version: string;
  payloads: UpdatePayloadSpec[];
}

export interface PublishedUpdate {
  /** The release's folder URL, ending in `/`. */
  folder: string;
  /** The payloads' SHA-256, hex, by name. */
  sha256: Record<string, string>;
}

/** What the module needs of the origin it is mounted on. */
export interface UpdateOriginHost {
  url: string;
  putFile(path: string, content: string | Uint8Array): void;
  signDetached(content: Uint8Array): Promise<Uint8Array | string>;
}

/** The `update.origin` setting that points at a simulated origin at `url`. */
export function simUpdateOrigin(url: string): string {
  return `${url}${updateOriginPath}/{board}/{version}/`;
}

function checkSegment(kind: string, value: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(value) || value.includes('..')) {
    throw new Error(`sim origin: ${kind} ${JSON.stringify(value)} is not a plain name`);
  }
}

export async function publishUpdatePayloads(
  host: UpdateOriginHost,
  options: PublishUpdateOptions,
): Promise<PublishedUpdate> {
  checkSegment('board', options.board);
  checkSegment('version', options.version);
  const folder = `${updateOriginPath}/${options.board}/${options.version}`;
  const sha256: Record<string, string> = {};
  for (const payload of options.payloads) {
    checkSegment('payload', payload.name);
    const path = `${folder}/${payload.name}`;
    const hex = createHash('sha256').update(payload.content).digest('hex');
    sha256[payload.name] = hex;
    host.putFile(path, payload.content);
    const sha256File = payload.sha256File ?? true;
    if (sha256File !== false) {
      host.putFile(`${path}.sha256`, sha256File === true ? `${hex}  ${payload.name}\n` : sha256File);
    }
    if (payload.openpgpSignature === true)
      host.putFile(`${path}.sig`, await host.signDetached(payload.content));
  }
  return { folder: `${host.url}${folder}/`, sha256 };
}
