import { type Command, InvalidArgumentError, Option } from 'commander';
import { PermanentError } from '../../shared/errors.ts';
import {
  checkGroupName,
  type UpdateGroup,
  type UpdateGroupRequest,
  weekdays,
} from '../../shared/update/groups.ts';
import { adminClient, type ConnectionFlags, connectionOptions } from './connection.ts';

interface ListFlags extends ConnectionFlags {
  json?: boolean;
}

interface PutFlags extends ConnectionFlags {
  channel: string;
  pin?: string;
  paused?: boolean;
  percent?: number;
  startPercent?: number;
  overMinutes?: number;
  maxPerPeriod?: number;
  periodMinutes?: number;
  window?: { start: string; end: string };
  days?: (typeof weekdays)[number][];
  description?: string;
}

function groupName(value: string): string {
  const bad = checkGroupName(value);
  if (bad !== undefined) throw new InvalidArgumentError(`${bad}.`);
  return value;
}

function number(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}, not "${value}".`);
    }
    return n;
  };
}

function windowArgument(value: string): { start: string; end: string } {
  const match = /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(value);
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new InvalidArgumentError(`"${value}" is not HH:MM-HH:MM in UTC (e.g. 22:00-04:00).`);
  }
  return { start: match[1], end: match[2] };
}

function daysArgument(value: string): (typeof weekdays)[number][] {
  const days = value.split(',').map((d) => d.trim().toLowerCase());
  const bad = days.find((d) => !(weekdays as readonly string[]).includes(d));
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not one of ${weekdays.join(', ')}.`);
  return days as (typeof weekdays)[number][];
}

/** The group the flags describe; the API checks it again and names any bad field. */
export function groupFromFlags(flags: PutFlags): UpdateGroupRequest {
  const percent =
    flags.percent !== undefined || flags.overMinutes !== undefined || flags.startPercent !== undefined;
  const capped = flags.maxPerPeriod !== undefined || flags.periodMinutes !== undefined;
  if (percent && capped) {
    throw new PermanentError(
      'invalid-arguments',
      'choose one rollout: --percent/--over-minutes or --max-per-period/--period-minutes.',
    );
  }
  if (flags.days !== undefined && flags.window === undefined) {
    throw new PermanentError('invalid-arguments', '--days needs --window.');
  }
  if (capped && (flags.maxPerPeriod === undefined || flags.periodMinutes === undefined)) {
    throw new PermanentError('invalid-arguments', '--max-per-period and --period-minutes go together.');
  }
  const rollout: UpdateGroupRequest['rollout'] = percent
    ? {
        kind: 'percent',
        ...(flags.percent === undefined ? {} : { percent: flags.percent }),
        ...(flags.startPercent === undefined ? {} : { startPercent: flags.startPercent }),
        ...(flags.overMinutes === undefined ? {} : { overMinutes: flags.overMinutes }),
      }
    : capped
      ? { kind: 'per-period', maxUpdates: flags.maxPerPeriod ?? 0, periodMinutes: flags.periodMinutes ?? 0 }
      : { kind: 'all' };
  return {
    channel: flags.channel,
    paused: flags.paused === true,
    ...(flags.pin === undefined ? {} : { version: flags.pin }),
    rollout,
    ...(flags.window === undefined
      ? {}
      : { window: { ...flags.window, ...(flags.days === undefined ? {} : { days: flags.days }) } }),
    ...(flags.description === undefined ? {} : { description: flags.description }),
  };
}

function describeRollout(group: UpdateGroup): string {
  const r = group.rollout;
  if (r.kind === 'all') return 'all at once';
  if (r.kind === 'per-period') return `${r.maxUpdates} per ${r.periodMinutes} min`;
  return r.overMinutes === 0 ? `${r.percent}%` : `${r.startPercent}%→${r.percent}% over ${r.overMinutes} min`;
}

export function formatGroupTable(groups: readonly UpdateGroup[]): string {
  if (groups.length === 0) return 'no update groups (a track named like a channel follows that channel)\n';
  const rows = [
    ['NAME', 'CHANNEL', 'TARGET', 'STATE', 'ROLLOUT', 'WINDOW (UTC)'],
    ...groups.map((g) => [
      g.name,
      g.channel,
      g.version ?? 'follow',
      g.paused ? 'paused' : 'active',
      describeRollout(g),
      g.window === undefined
        ? 'any time'
        : `${g.window.start}-${g.window.end}${g.window.days ? ` ${g.window.days.join(',')}` : ''}`,
    ]),
  ];
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return `${rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

const groupsPath = '/v1/update-groups';

function registerList(groups: Command): void {
  connectionOptions(
    groups
      .command('list')
      .description('show every update group')
      .option('--json', 'print the API answer as JSON'),
  ).action(async (flags: ListFlags) => {
    const response = await adminClient(flags).request('GET', groupsPath);
    const { groups: list } = (await response.json()) as { groups: UpdateGroup[] };
    process.stdout.write(flags.json ? `${JSON.stringify(list, null, 2)}\n` : formatGroupTable(list));
  });
  connectionOptions(
    groups
      .command('get')
      .description('print one group as JSON')
      .argument('<name>', 'the group (track) name', groupName),
  ).action(async (name: string, flags: ConnectionFlags) => {
    const response = await adminClient(flags).request('GET', `${groupsPath}/${name}`);
    process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  });
}

function registerPut(groups: Command): void {
  connectionOptions(
    groups
      .command('put')
      .description(
        'create or replace a group; instances join it with GROUP=<name> in /etc/flatcar/update.conf',
      )
      .argument('<name>', 'the group name instances send as their track', groupName)
      .requiredOption('--channel <name>', 'the channel whose current mirrored version the group follows')
      .option('--pin <version>', 'offer this version instead of following the channel')
      .option(
        '--paused',
        'store the group paused: no instance is offered an update (without it, put stores it active)',
      )
      .option('--percent <n>', 'offer the update to this share of instances', number(0, 100))
      .option(
        '--start-percent <n>',
        'share offered when the version becomes the target (default 0)',
        number(0, 100),
      )
      .option(
        '--over-minutes <n>',
        'grow the share linearly to --percent over this many minutes',
        number(0, 129600),
      )
      .option(
        '--max-per-period <n>',
        'offer the update to at most this many instances per period',
        number(1, 5000),
      )
      .option('--period-minutes <n>', 'the period of --max-per-period', number(1, 44640))
      .option(
        '--window <HH:MM-HH:MM>',
        'offer updates only inside this UTC window (may run over midnight)',
        windowArgument,
      )
      .addOption(
        new Option(
          '--days <list>',
          `days the window opens, comma-separated (${weekdays.join(',')})`,
        ).argParser(daysArgument),
      )
      .option('--description <text>', 'a note for operators'),
  ).action(async (name: string, flags: PutFlags) => {
    const response = await adminClient(flags).request('PUT', `${groupsPath}/${name}`, groupFromFlags(flags));
    const group = (await response.json()) as UpdateGroup;
    const verb = response.status === 201 ? 'created' : 'replaced';
    process.stdout.write(`${verb} update group ${name}\n${formatGroupTable([group])}`);
  });
}

function registerChanges(groups: Command): void {
  connectionOptions(
    groups
      .command('delete')
      .description('delete a group (a track named like a channel then follows that channel)')
      .argument('<name>', 'the group name', groupName),
  ).action(async (name: string, flags: ConnectionFlags) => {
    await adminClient(flags).request('DELETE', `${groupsPath}/${name}`);
    process.stdout.write(`deleted update group ${name}\n`);
  });
  for (const [verb, description] of [
    ['pause', 'stop offering updates to the group at once (instances get noupdate)'],
    ['resume', 'offer updates to the group again'],
  ] as const) {
    connectionOptions(
      groups.command(verb).description(description).argument('<name>', 'the group name', groupName),
    ).action(async (name: string, flags: ConnectionFlags) => {
      await adminClient(flags).request('POST', `${groupsPath}/${name}/${verb}`);
      process.stdout.write(`${verb === 'pause' ? 'paused' : 'resumed'} update group ${name}\n`);
    });
  }
}

/** `cldist updates groups list|get|put|delete|pause|resume`: the update groups, through the admin API. */
export function registerUpdatesCommand(program: Command): void {
  const updates = program.command('updates').description('manage what the Omaha update endpoint offers');
  const groups = updates
    .command('groups')
    .description('update groups: which channel or pinned version each track gets, how fast, and when');
  registerList(groups);
  registerPut(groups);
  registerChanges(groups);
}
