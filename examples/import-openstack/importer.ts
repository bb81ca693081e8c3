import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PermanentError, TransientError } from '../../shared/errors.ts';
import { parseEvent, type ReleaseMirroredEvent } from '../../shared/events.ts';

/** What the importer needs to know; every field comes from the command line. */
export interface ImportSettings {
  /** The mirror root: the release's folder is `detail.manifestKey`'s (`{mirrorPath}/{channel}/{board}/{version}`). */
  mirrorUrl: string;
  /** The artifact to import; the OpenStack image by default. */
  artifact: string;
  /** The command that runs `cldist`, e.g. `['node', 'bin/cldist.js']`. */
  cldist: string[];
  /** Extra `cldist verify` arguments: `--keyring`, `--trust`. */
  verifyArgs: string[];
  /** Folder for downloads; each release gets its own subfolder. */
  workDir: string;
  /** Glance image name; `{channel}`, `{board}` and `{version}` are replaced. */
  imageName: string;
}

/** An event this subscriber cannot use: malformed, or not `release.mirrored`. Retrying cannot help. */
export class UnusableEventError extends PermanentError {
  constructor(message: string) {
    super('unusable-event', message);
    this.name = 'UnusableEventError';
  }
}

/** The image did not pass `cldist verify`; nothing is imported. */
export class ImageRefusedError extends PermanentError {
  constructor(message: string) {
    super('image-refused', message);
    this.name = 'ImageRefusedError';
  }
}

/**
 * The event in a message body: the JSON object itself (raw SNS delivery, webhooks), or SNS's envelope
 * `{"Type":"Notification","Message":"…"}` around it.
 */
export function readReleaseMirrored(body: string): ReleaseMirroredEvent {
  let text = body;
  try {
    const outer = JSON.parse(body) as { Type?: unknown; Message?: unknown };
    if (outer.Type === 'Notification' && typeof outer.Message === 'string') text = outer.Message;
  } catch {
    // Not JSON at all: parseEvent says so.
  }
  let event: ReturnType<typeof parseEvent>;
  try {
    event = parseEvent(text);
  } catch (error) {
    throw new UnusableEventError((error as Error).message);
  }
  if (event.event !== 'release.mirrored') {
    throw new UnusableEventError(
      `event ${event.event} is not release.mirrored; subscribe with the filter policy {"event":["release.mirrored"]}`,
    );
  }
  return event;
}

async function download(url: string, path: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(30 * 60_000) });
  } catch (cause) {
    throw new TransientError('mirror-unreachable', `cannot download ${url}: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    const error = `GET ${url} answered ${response.status}`;
    if (response.status >= 500) throw new TransientError('mirror-failed', error);
    throw new PermanentError('mirror-refused', error);
  }
  const partial = `${path}.partial`;
  await pipeline(
    Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
    createWriteStream(partial),
  );
  await rename(partial, path);
}

function verify(settings: ImportSettings, file: string, signature: string): Promise<void> {
  const [command = 'cldist', ...prefix] = settings.cldist;
  const args = [...prefix, 'verify', file, '--signature', signature, ...settings.verifyArgs];
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'utf8', timeout: 30 * 60_000 }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new ImageRefusedError(`cldist verify refused ${file}: ${stderr.trim() || error.message}`));
    });
  });
}

/** Glance takes the raw qcow2; the mirror keeps the signed `.bz2`, which is checked before this runs. */
async function decompress(file: string, target: string): Promise<void> {
  const child = spawn('bzip2', ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject).once('close', resolve);
  });
  await pipeline(child.stdout, createWriteStream(`${target}.partial`));
  const code = await exited;
  if (code !== 0) throw new ImageRefusedError(`bzip2 cannot expand ${file}: ${stderr.trim()}`);
  await rename(`${target}.partial`, target);
}

/** `openstack image create` for the verified image, as an argument vector. */
export function glanceCommand(
  event: ReleaseMirroredEvent,
  imagePath: string,
  nameTemplate: string,
): string[] {
  const name = nameTemplate
    .replaceAll('{channel}', event.channel)
    .replaceAll('{board}', event.board)
    .replaceAll('{version}', event.version);
  const arch = event.board.startsWith('arm64') ? 'aarch64' : 'x86_64';
  return [
    'openstack',
    'image',
    'create',
    '--disk-format',
    'qcow2',
    '--container-format',
    'bare',
    '--file',
    imagePath,
    '--property',
    'os_distro=flatcar',
    '--property',
    `os_version=${event.version}`,
    '--property',
    `architecture=${arch}`,
    '--property',
    `flatcar_channel=${event.channel}`,
    name,
  ];
}

/** POSIX shell quoting, so the printed command can be pasted as is. */
export function shellQuote(args: readonly string[]): string {
  return args
    .map((arg) => (/^[A-Za-z0-9_./=:,+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`))
    .join(' ');
}

/**
 * One `release.mirrored` event to a Glance command: download the image and its `.sig` from the mirror,
 * check them with `cldist verify` (the mirror's own trust rules), expand the `.bz2`, and return the command.
 * Nothing is left behind when a step fails.
 */
export async function prepareImport(body: string, settings: ImportSettings): Promise<string[]> {
  const event = readReleaseMirrored(body);
  if (!event.detail.artifacts.includes(settings.artifact)) {
    throw new UnusableEventError(
      `${event.channel}/${event.board} ${event.version} was mirrored without ${settings.artifact}`,
    );
  }
  const folder = join(settings.workDir, `${event.source}-${event.channel}-${event.board}-${event.version}`);
  await mkdir(folder, { recursive: true });
  // The manifest sits in the release's folder, under the source's mirror path (`flatcar/stable/…`).
  const folderKey = event.detail.manifestKey.replace(/\/?release\.json$/, '');
  if (!folderKey.split('/').every((part) => /^[a-z0-9][a-z0-9._-]*$/.test(part) && !part.includes('..'))) {
    throw new UnusableEventError(
      `manifestKey ${JSON.stringify(event.detail.manifestKey)} is not a release folder`,
    );
  }
  const base = `${settings.mirrorUrl.replace(/\/+$/, '')}/${folderKey}`;
  const file = join(folder, settings.artifact);
  const image = join(folder, settings.artifact.replace(/\.bz2$/, ''));
  try {
    await download(`${base}/${settings.artifact}.sig`, `${file}.sig`);
    await download(`${base}/${settings.artifact}`, file);
    await verify(settings, file, `${file}.sig`);
    if (file !== image) await decompress(file, image);
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
  if (file !== image) await rm(file, { force: true });
  return glanceCommand(event, image, settings.imageName);
}
