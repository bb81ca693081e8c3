import { readFile } from 'node:fs/promises';
import { type CldistConfig, configSchema, resolveProjectPath } from '../shared/config.ts';
import { type ConfigProblem, describeIssues } from '../shared/config-issues.ts';
import { checkNames, knownBoards } from '../shared/config-names.ts';
import { legacyKeys, type SourceChannel, type SourceConfig } from '../shared/config-sources.ts';
import { ConfigError, describeError } from '../shared/errors.ts';
import { currentVersionUrl } from '../shared/release/layout.ts';
import { loadUpdatePayloadKeys } from '../shared/update/crau-verify.ts';
import { updateLayoutProblem } from '../shared/update/origin.ts';
import { entryKey, latestBinding, loadKeyringFromConfig } from '../shared/verify/keyring.ts';

/** One signing subkey of a trusted key, as the verifier will judge it today. */
export interface SigningSubkeyReport {
  fingerprint: string;
  created: string;
  /** ISO date, or undefined when neither the subkey nor its primary expires. */
  expires?: string;
  state: 'valid' | 'expired' | 'revoked';
}

export interface TrustedKeyReport {
  fingerprint: string;
  userIds: string[];
  signingSubkeys: SigningSubkeyReport[];
}

/** A channel with the URL of each board's version file, as the poller will read it. */
export type EffectiveChannel = SourceChannel & { versionUrls: Record<string, string> };

/** The validated config with every URL resolved and keyring paths made absolute. */
export type EffectiveConfig = Omit<CldistConfig, 'sources'> & {
  sources: Array<Omit<SourceConfig, 'channels'> & { channels: EffectiveChannel[] }>;
};

export interface ConfigCheckReport {
  /** The file checked, or undefined for the built-in defaults. */
  file?: string;
  valid: boolean;
  errors: ConfigProblem[];
  warnings: ConfigProblem[];
  /** The config as `serve` would run it, defaults filled in; only when the schema accepted it. */
  effective?: EffectiveConfig;
  keys?: TrustedKeyReport[];
}

async function readRaw(file: string | undefined): Promise<unknown> {
  if (file === undefined) return {};
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${file}; pass an existing JSON file with --config`, {
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/**
 * The old top-level lists still work (read as one source named `flatcar` at the mirror's root), with a
 * warning that shows them in the new shape; and a base URL that ends in a board without `{board}` would
 * poll `…/amd64-usr/amd64-usr/current/version.txt`.
 */
function sourceWarnings(raw: unknown, config: CldistConfig): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  const record = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const old = legacyKeys.filter((key) => record[key] !== undefined);
  const [only] = config.sources;
  if (old.length > 0 && only !== undefined) {
    const { keys: _keys, ...shown } = only;
    warnings.push({
      path: old.join(', '),
      message: `the top-level ${old.map((k) => `"${k}"`).join(', ')} are read as one source; write it as "sources": [${JSON.stringify(shown)}]`,
    });
  }
  for (const [i, source] of config.sources.entries()) {
    const templates = [source.baseUrl, ...source.channels.map((c) => c.baseUrl)];
    for (const template of templates) {
      if (template === undefined || template.includes('{board}')) continue;
      const last = template.split('/').pop() ?? '';
      if ((knownBoards as readonly string[]).includes(last)) {
        warnings.push({
          path: `sources.${i}.baseUrl`,
          message: `${template} ends in a board, and the board is appended to it; write {board} where the board goes`,
          suggestion: template.replace(/[^/]+$/, '{board}'),
        });
      }
    }
  }
  return warnings;
}

async function trustedKeys(config: CldistConfig, now: Date): Promise<TrustedKeyReport[]> {
  const keyring = await loadKeyringFromConfig(config.keyring);
  return [...keyring.trustedFingerprints].map((fingerprint) => {
    const key = keyring.keys.find((k) => k.getFingerprint().toUpperCase() === fingerprint);
    const primary = keyring.entries.get(entryKey(fingerprint, fingerprint));
    const primaryExpires = primary === undefined ? undefined : latestBinding(primary)?.expires;
    const primaryRevoked = primary?.revocations.some((r) => r.created <= now) ?? false;
    const signingSubkeys: SigningSubkeyReport[] = [];
    for (const entry of keyring.entries.values()) {
      if (entry.isPrimary || entry.primaryFingerprint !== fingerprint) continue;
      const binding = latestBinding(entry);
      if (binding === undefined || !entry.algorithmCanSign || !binding.flagsAllowSigning) continue;
      const expires = [binding.expires, primaryExpires]
        .filter((d): d is Date => d !== undefined)
        .sort((a, b) => a.getTime() - b.getTime())[0];
      const revoked = primaryRevoked || entry.revocations.some((r) => r.created <= now);
      signingSubkeys.push({
        fingerprint: entry.fingerprint,
        created: entry.created.toISOString(),
        ...(expires === undefined ? {} : { expires: expires.toISOString() }),
        state: revoked ? 'revoked' : expires !== undefined && expires <= now ? 'expired' : 'valid',
      });
    }
    signingSubkeys.sort((a, b) => a.created.localeCompare(b.created));
    return { fingerprint, userIds: key?.getUserIDs() ?? [], signingSubkeys };
  });
}

/**
 * Everything `serve` checks at start, without starting anything: the schema (unknown keys with the
 * nearest valid one), board and channel names against what Flatcar publishes, the keyring files and
 * trusted fingerprints, and the update payload keys. Every problem is collected, not just the first.
 */
export async function checkConfig(file: string | undefined, now: Date): Promise<ConfigCheckReport> {
  return checkRawConfig(await readRaw(file), now, file);
}

/** The checks of `checkConfig` on an already parsed JSON value. */
export async function checkRawConfig(raw: unknown, now: Date, file?: string): Promise<ConfigCheckReport> {
  const names = checkNames(raw);
  const errors: ConfigProblem[] = [];
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) errors.push(...describeIssues(parsed.error, '', configSchema));
  errors.push(...names.errors);
  const base = { ...(file === undefined ? {} : { file }), warnings: names.warnings };
  if (!parsed.success) return { ...base, valid: false, errors };
  const config = parsed.data;
  let keys: TrustedKeyReport[] | undefined;
  try {
    keys = await trustedKeys(config, now);
  } catch (error) {
    errors.push({ path: 'keyring', message: describeError(error) });
  }
  const legacyLayout = typeof raw !== 'object' || raw === null || !('sources' in raw);
  const layoutProblem = updateLayoutProblem(config, legacyLayout);
  if (layoutProblem !== undefined) {
    const [path = 'channels', ...rest] = layoutProblem.split(': ');
    errors.push({ path, message: rest.join(': ') });
  }
  if (config.update !== undefined) {
    try {
      loadUpdatePayloadKeys(config.update.payloadKeys);
    } catch (error) {
      const message = describeError(error);
      const field = /^(update\.payloadKeys\.[0-9]+): /.exec(message);
      errors.push({
        path: field?.[1] ?? 'update.payloadKeys',
        message: message.replace(/^update\.payloadKeys\.[0-9]+: /, ''),
      });
    }
  }
  for (const key of keys ?? []) {
    if (!key.signingSubkeys.some((s) => s.state === 'valid')) {
      const message = `trusted key ${key.fingerprint} has no valid signing subkey today: nothing it signs verifies`;
      base.warnings.push({ path: 'keyring.trustedFingerprints', message });
    }
  }
  base.warnings.push(...sourceWarnings(raw, config));
  const effective: EffectiveConfig = {
    ...config,
    sources: config.sources.map((source) => ({
      ...source,
      channels: source.channels.map((channel) => ({
        ...channel,
        versionUrls: Object.fromEntries(
          channel.boards.map((board) => [board, currentVersionUrl(source, channel, board)]),
        ),
      })),
    })),
    keyring: { ...config.keyring, files: config.keyring.files.map(resolveProjectPath) },
  };
  return { ...base, valid: errors.length === 0, errors, effective, ...(keys === undefined ? {} : { keys }) };
}
