import { createInterface } from 'node:readline/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { PermanentError } from '../../shared/errors.ts';
import type { ReleaseRef } from '../../shared/ledger/ledger.ts';
import { versionPattern } from '../../shared/messages.ts';
import type { ReleaseSummary, RetryResult } from '../../shared/mirror/release-admin.ts';
import { type ReleaseState, releaseStates } from '../../shared/mirror/release-state.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';

interface ListFlags extends ConnectionFlags {
  state?: ReleaseState;
  source?: string;
  channel?: string;
  board?: string;
  json?: boolean;
}

interface RetryFlags extends ConnectionFlags {
  yes?: boolean;
}

const plainName = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * `SOURCE/CHANNEL/BOARD/VERSION`, checked before anything is sent; a bad one is a usage error naming the
 * argument. The source is needed: two sources may both have a `stable` channel.
 */
export function parseReleaseArgument(value: string): ReleaseRef {
  const parts = value.split('/');
  const [source, channel, board, version] = parts;
  if (
    parts.length !== 4 ||
    source === undefined ||
    channel === undefined ||
    board === undefined ||
    version === undefined
  ) {
    throw new InvalidArgumentError(
      `"${value}" is not SOURCE/CHANNEL/BOARD/VERSION (e.g. flatcar/stable/amd64-usr/4081.2.0; \`cldist releases list\` shows them).`,
    );
  }
  if (!plainName.test(source))
    throw new InvalidArgumentError(`source "${source}" is not a plain lower-case name.`);
  if (!plainName.test(channel))
    throw new InvalidArgumentError(`channel "${channel}" is not a plain lower-case name.`);
  if (!plainName.test(board))
    throw new InvalidArgumentError(`board "${board}" is not a plain lower-case name.`);
  if (!versionPattern.test(version)) {
    throw new InvalidArgumentError(`version "${version}" is not a version of digits and dots.`);
  }
  return { source, channel, board, version };
}

/** One line per release: what it is waiting for, or why it failed. */
function detailOf(release: ReleaseSummary): string {
  const waiting = release.artifacts.filter((a) => a.state === 'awaiting_trust');
  const failed = release.artifacts.filter((a) => a.state === 'failed_verification');
  const open = release.artifacts.filter((a) => a.state === 'pending' || a.state === 'missing');
  const parts: string[] = [];
  const keys = [...new Set(waiting.map((a) => a.keyId ?? 'unknown'))];
  if (waiting.length > 0) parts.push(`${waiting.length} awaiting trust in key ${keys.join(', ')}`);
  for (const artifact of failed) {
    const reason = /^[a-z-]+(?::[a-z-]+)?/.exec(artifact.error ?? '')?.[0] ?? 'refused';
    parts.push(`${artifact.name} ${artifact.required ? 'failed' : 'failed (optional)'}: ${reason}`);
  }
  if (open.length > 0)
    parts.push(`${open.length} open (${open.map((a) => `${a.name} ${a.state}`).join(', ')})`);
  return parts.join('; ');
}

export function formatReleaseTable(releases: ReleaseSummary[]): string {
  if (releases.length === 0) return 'no releases\n';
  const rows = [
    ['SOURCE', 'CHANNEL', 'BOARD', 'VERSION', 'STATE', 'DETAIL'],
    ...releases.map((r) => [r.source, r.channel, r.board, r.version, r.state, detailOf(r)]),
  ];
  const widths = [0, 1, 2, 3, 4].map((column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return `${rows
    .map((row) =>
      row
        .map((cell, column) => (column < 5 ? cell.padEnd(widths[column] ?? 0) : cell))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

async function list(flags: ListFlags): Promise<void> {
  const query = new URLSearchParams();
  if (flags.state !== undefined) query.set('state', flags.state);
  if (flags.source !== undefined) query.set('source', flags.source);
  if (flags.channel !== undefined) query.set('channel', flags.channel);
  if (flags.board !== undefined) query.set('board', flags.board);
  const suffix = query.size === 0 ? '' : `?${query.toString()}`;
  const response = await adminClient(flags).request('GET', `/v1/releases${suffix}`);
  const { releases } = (await response.json()) as { releases: ReleaseSummary[] };
  process.stdout.write(flags.json ? `${JSON.stringify(releases, null, 2)}\n` : formatReleaseTable(releases));
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question(`${question} [y/N] `)).trim());
  } finally {
    prompt.close();
  }
}

async function retry(ref: ReleaseRef, flags: RetryFlags): Promise<void> {
  const client = adminClient(flags);
  const path = `/v1/releases/${ref.source}/${ref.channel}/${ref.board}/${ref.version}/retry`;
  let response = await client.send('POST', path, { confirmFinal: flags.yes === true });
  if (response.status === 409) {
    const { error } = (await response.json()) as { error: { message: string } };
    if (!process.stdin.isTTY) {
      throw new PermanentError('confirmation-required', `${error.message}; pass --yes to retry them`);
    }
    if (!(await confirm(`${error.message}.\nFetch and verify them again?`))) {
      process.stderr.write('nothing sent\n');
      process.exitCode = 1;
      return;
    }
    response = await client.send('POST', path, { confirmFinal: true });
  }
  if (!response.ok) await client.fail(response, 'POST', path);
  const result = (await response.json()) as RetryResult;
  const id = `${ref.source}/${ref.channel}/${ref.board}/${ref.version}`;
  process.stdout.write(
    result.requeued.length === 0
      ? `nothing to retry: ${id} is ${result.release.state}\n`
      : `sent ${result.requeued.length} job(s) for ${id}: ${result.requeued.join(', ')}\n`,
  );
}

/** `cldist releases list|retry`: the mirror's releases and their states, and sending their jobs again. */
export function registerReleasesCommand(program: Command): void {
  const releases = program
    .command('releases')
    .description('list mirrored, failed and awaiting-trust releases; retry a release now');

  connectionOptions(
    releases
      .command('list')
      .description('show every claimed release and its state (newest last per source, channel and board)')
      .addOption(new Option('--state <state>', 'only releases in this state').choices(releaseStates))
      .option('--source <name>', 'only this source')
      .option('--channel <name>', 'only this channel')
      .option('--board <name>', 'only this board')
      .option('--json', 'print the API answer as JSON'),
  ).action((flags: ListFlags) => list(flags));

  connectionOptions(
    releases
      .command('retry')
      .description(
        "send the jobs of a release's open, missing and awaiting-trust artifacts now; artifacts refused for good (tampered, revoked or weak signature) only after confirmation",
      )
      .argument(
        '<release>',
        'SOURCE/CHANNEL/BOARD/VERSION, e.g. flatcar/stable/amd64-usr/4081.2.0',
        parseReleaseArgument,
      )
      .option('-y, --yes', 'also retry artifacts refused for good, without asking'),
  ).action((ref: ReleaseRef, flags: RetryFlags) => retry(ref, flags));
}
