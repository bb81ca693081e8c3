import type { Command } from 'commander';
import { type ConfigProblem, formatProblem } from '../../shared/config-issues.ts';
import { ConfigError } from '../../shared/errors.ts';
import type {
  ConfigCheckReport,
  EffectiveConfig,
  SigningSubkeyReport,
  TrustedKeyReport,
} from '../config-check.ts';

interface ConfigCheckFlags {
  config?: string;
  json: boolean;
}

/** Settings other than the ones shown in their own section, as `schedule.everyMinutes = 15` lines. */
function settingLines(value: unknown, path: string[] = []): string[] {
  if (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    path.join('.') !== 'platform.baseIgnition'
  ) {
    return Object.entries(value).flatMap(([key, child]) => settingLines(child, [...path, key]));
  }
  return [`  ${path.join('.')} = ${JSON.stringify(value)}`];
}

function problemLines(title: string, problems: ConfigProblem[]): string[] {
  return problems.length === 0 ? [] : [`${title}:`, ...problems.map((p) => `  ${formatProblem(p)}`)];
}

function subkeyLine(sub: SigningSubkeyReport): string {
  const expiry = sub.expires === undefined ? 'never expires' : `expires ${sub.expires.slice(0, 10)}`;
  return `${sub.fingerprint} ${expiry} (${sub.state})`;
}

/** One source: where it goes in the mirror, each channel's boards and version file URL, artifacts, keys. */
function sourceLines(source: EffectiveConfig['sources'][number], keys: TrustedKeyReport[]): string[] {
  const folder = source.mirrorPath === '' ? 'the mirror root' : `${source.mirrorPath}/`;
  const lines = [`  ${source.name}  (${source.versionKey}, mirrored under ${folder})`, '    channels:'];
  for (const channel of source.channels) {
    const keep = channel.keepReleases ?? source.keepReleases;
    const kept = keep === undefined ? '' : `  (keep the newest ${keep} per board)`;
    lines.push(`      ${channel.name}: ${channel.boards.join(', ')}${kept}`);
    for (const [board, url] of Object.entries(channel.versionUrls)) lines.push(`        ${board}  ${url}`);
  }
  lines.push(
    '    artifacts:',
    ...source.artifacts.map((a) => `      ${a.name} (${a.required ? 'required' : 'optional'})`),
  );
  const trusted = source.keys ?? keys.map((k) => k.fingerprint);
  lines.push(`    keys${source.keys === undefined ? ' (every trusted key)' : ''}:`);
  for (const fingerprint of trusted) {
    const key = keys.find((k) => k.fingerprint === fingerprint);
    const subkeys = key?.signingSubkeys ?? [];
    const newest = subkeys.filter((s) => s.state === 'valid').at(-1) ?? subkeys.at(-1);
    const who = key === undefined || key.userIds.length === 0 ? '' : ` ${key.userIds[0]}`;
    const what = newest === undefined ? 'no signing subkey' : `signing subkey ${subkeyLine(newest)}`;
    lines.push(`      ${fingerprint}${who}: ${what}`);
  }
  return lines;
}

/**
 * The effective config for a person, then the warnings; the errors of an invalid config go to stderr as a
 * ConfigError, like every other command's.
 */
export function renderConfigReport(report: ConfigCheckReport): string {
  const lines = [`config: ${report.file ?? 'built-in defaults'}`];
  const config = report.effective;
  if (config !== undefined) {
    lines.push('sources:', ...config.sources.flatMap((source) => sourceLines(source, report.keys ?? [])));
    lines.push('keyring:', ...config.keyring.files.map((file) => `  file ${file}`));
    for (const key of report.keys ?? []) {
      lines.push(
        `  trusted ${key.fingerprint}${key.userIds.length === 0 ? '' : ` ${key.userIds.join(', ')}`}`,
      );
      if (key.signingSubkeys.length === 0) lines.push('    no signing subkey');
      for (const sub of key.signingSubkeys) lines.push(`    signing subkey ${subkeyLine(sub)}`);
    }
    const { sources: _s, keyring, ...rest } = config;
    const { files: _f, trustedFingerprints: _t, ...keyringSettings } = keyring;
    lines.push('settings:', ...settingLines({ keyring: keyringSettings, ...rest }));
  }
  lines.push(...problemLines('warnings', report.warnings));
  if (report.valid) lines.push('config is valid');
  return `${lines.join('\n')}\n`;
}

async function run(flags: ConfigCheckFlags): Promise<void> {
  const { checkConfig } = await import('../config-check.ts');
  const report = await checkConfig(flags.config, new Date());
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    if (!report.valid) process.exitCode = 2;
    return;
  }
  process.stdout.write(renderConfigReport(report));
  if (report.valid) return;
  const where = report.file === undefined ? 'the built-in config' : `config file ${report.file}`;
  throw new ConfigError(
    `${where} is invalid:\n${report.errors.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
  );
}

/** `cldist config check`: what `serve` would run with, and every problem in it, without starting anything. */
export function registerConfigCommand(program: Command): void {
  const config = program
    .command('config')
    .description('Check a config file without starting anything: config check');
  config
    .command('check')
    .description(
      'Validate a config without polling or starting anything, and print the effective config: each ' +
        "source's channels, boards per channel and version file URLs, artifacts and keys; keyring files and " +
        "trusted keys with each signing subkey's expiry; and every other setting. Unknown keys, boards and " +
        'channels get the nearest valid name; the old top-level channels/boards/artifacts get a warning ' +
        'that shows them as a source. ' +
        'Exit 0 when valid (warnings allowed), 2 with every problem listed when not.',
    )
    .option('--config <file>', 'JSON config file (default: the built-in config)')
    .option('--json', 'print the report as one JSON object on stdout', false)
    .action((flags: ConfigCheckFlags) => run(flags));
}
