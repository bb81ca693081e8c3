import { artifactSeed, generatedBytes } from './content.ts';
import { type ObjectStore, type StoredObject, shortHash, toBuffer } from './objects.ts';
import { digestsText, type SimSigningKey, signChunks } from './signing.ts';

export type ArtifactSpec = { name: string; size: number } | { name: string; content: string | Uint8Array };

export interface PublishOptions {
  /** The channel as it appears in upstream URLs (`lts` for an LTS stream). */
  channel: string;
  board: string;
  version: string;
  /** `version.txt` is written unless given here; give it to publish a malformed one. */
  artifacts: ArtifactSpec[];
  makeCurrent?: boolean;
  /** The folder `makeCurrent` moves: `current`, or `current-2024` for a Flatcar LTS stream. */
  current?: string;
  /** The version file's key prefix; default the origin's style. */
  prefix?: 'FLATCAR' | 'COREOS';
  /** Signature creation time; defaults to now. */
  signatureDate?: Date;
  /** Fingerprint of the subkey that signs this release (a rotation); default the key's newest signing subkey. */
  signingSubkey?: string;
}

export interface PublishedRelease {
  /** Every published file except the `.sig` files: artifacts, `version.txt`, `*.DIGESTS`. */
  sha512: Record<string, string>;
  size: Record<string, number>;
  /** URL of the versioned folder, without trailing slash. */
  url: string;
}

function buildId(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}`;
}

/** A `version.txt` as Flatcar and CoreOS publish it: the same keys under `FLATCAR_` or `COREOS_`. */
export function versionFileText(prefix: 'FLATCAR' | 'COREOS', version: string, date: Date): string {
  const [build = '0', branch = '0', patch = '0'] = version.split('.');
  return [
    `${prefix}_BUILD=${build}`,
    `${prefix}_BRANCH=${branch}`,
    `${prefix}_PATCH=${patch}`,
    `${prefix}_VERSION=${version}`,
    `${prefix}_VERSION_ID=${version}`,
    `${prefix}_BUILD_ID="${buildId(date)}"`,
    `${prefix}_SDK_VERSION=${build}.0.0`,
    '',
  ].join('\n');
}

export function checkSegment(kind: string, value: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(value) || value.includes('..')) {
    throw new Error(`sim origin: ${kind} ${JSON.stringify(value)} is not a plain name`);
  }
}

type Body = Omit<StoredObject, 'generation' | 'modified' | 'baseTag' | 'size'>;

/** Signs and stores files of one release folder, each with its `.sig` and (but DIGESTS) its `.DIGESTS`. */
export class ReleaseWriter {
  readonly published: PublishedRelease;

  constructor(
    private readonly store: ObjectStore,
    private readonly key: SimSigningKey,
    private readonly folder: string,
    url: string,
    private readonly options: Pick<PublishOptions, 'signatureDate' | 'signingSubkey'>,
  ) {
    this.published = { sha512: {}, size: {}, url };
  }

  async write(spec: ArtifactSpec, version: string): Promise<void> {
    if ('content' in spec) {
      const content = toBuffer(spec.content);
      await this.file(spec.name, { content }, () => [content]);
    } else {
      const seed = artifactSeed(spec.name, version);
      await this.file(spec.name, { seed }, () => generatedBytes(seed, 0, spec.size));
    }
  }

  private async file(name: string, body: Body, chunks: () => Iterable<Uint8Array>): Promise<void> {
    const { signatureDate, signingSubkey } = this.options;
    const signed = await signChunks(this.key, chunks(), signatureDate, signingSubkey);
    this.store.put(`${this.folder}/${name}`, {
      ...body,
      size: signed.size,
      baseTag: shortHash(body.content ?? `${body.seed}\u0000${signed.sha512}`),
    });
    this.store.putContent(`${this.folder}/${name}.sig`, signed.signature);
    this.published.sha512[name] = signed.sha512;
    this.published.size[name] = signed.size;
    if (!name.endsWith('.DIGESTS')) {
      const digests = Buffer.from(digestsText(name, signed));
      await this.file(`${name}.DIGESTS`, { content: digests }, () => [digests]);
    }
  }
}
