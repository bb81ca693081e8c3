import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import { publicKeyBlocks, type TrustInput, type TrustRead, type TrustSource } from './source.ts';

export interface FileTrustOptions {
  /** The configured keyring files: they must exist. */
  keyringFiles: string[];
  /** The rotation file: absent or empty means no rotated keys yet. */
  trustFile: string;
}

async function statSignature(path: string): Promise<string> {
  try {
    const info = await stat(path);
    return `${path}\u0000${info.ino}\u0000${info.size}\u0000${info.mtimeMs}`;
  } catch {
    return `${path}\u0000absent`;
  }
}

async function readInputs(options: FileTrustOptions): Promise<TrustInput[]> {
  const inputs: TrustInput[] = [];
  for (const path of options.keyringFiles) {
    try {
      inputs.push({ label: `keyring file ${path}`, text: await readFile(path, 'utf8') });
    } catch (cause) {
      throw new ConfigError(`keyring.files: cannot read ${path}: ${(cause as Error).message}`, { cause });
    }
  }
  let trustText = '';
  try {
    trustText = await readFile(options.trustFile, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError(`cannot read trust file ${options.trustFile}: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  for (const [index, block] of publicKeyBlocks(trustText, options.trustFile).entries()) {
    inputs.push({ label: `${options.trustFile} key #${index + 1}`, text: block });
  }
  return inputs;
}

/**
 * The keys of a single machine: the configured keyring files plus the trust file, versioned by a hash of
 * their contents. An unchanged set costs one `stat` per file; a touched but identical file is read and
 * found unchanged.
 */
export function fileTrustSource(options: FileTrustOptions): TrustSource & { files: string[] } {
  const files = [...options.keyringFiles, options.trustFile];
  let seen: { signature: string; version: string } | undefined;
  return {
    location: options.trustFile,
    files,
    async read(knownVersion): Promise<TrustRead> {
      const signature = (await Promise.all(files.map(statSignature))).join('\n');
      if (seen !== undefined && seen.signature === signature && seen.version === knownVersion) {
        return { changed: false };
      }
      const inputs = await readInputs(options);
      const hash = createHash('sha256');
      for (const input of inputs) hash.update(`${input.label}\u0000${input.text}\u0000`);
      const version = `sha256:${hash.digest('hex').slice(0, 32)}`;
      seen = { signature, version };
      return version === knownVersion ? { changed: false } : { changed: true, version, inputs };
    },
  };
}
