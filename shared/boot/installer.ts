import type { SourceConfig } from '../config-sources.ts';
import { type BootProfile, channelFolder } from './profiles.ts';

/** Where the live system keeps the instance's own config for flatcar-install's `-i`. */
export const installedConfigPath = '/opt/cldist/instance.ign';

/** The unit that installs and reboots; its name shows in `systemctl` and the journal of the live system. */
export const installUnitName = 'cldist-install.service';

export interface InstallPlan {
  /** `{mirror}/{channel}/{board}`: what flatcar-install's `-b` replaces its release server URL with. */
  mirrorBase: string;
  channel: string;
  board: string;
  /** A pinned version, or undefined to let flatcar-install read `current/version.txt` from the mirror. */
  version?: string;
  disk: string;
  /** The instance's own config, as served to the installed system (same boot token, `stage=installed`). */
  configUrl: string;
}

/**
 * The flatcar-install command line (flatcar/init, bin/flatcar-install): `-b` replaces the release server
 * URL whole, so it names the mirror's channel and board folder; `-C` with no `-V` makes it read
 * `current/version.txt` there; `-o ''` forces the generic `flatcar_production_image.bin.bz2` whatever OEM
 * the live system reports, which is the image the mirror holds.
 */
export function flatcarInstallArgs(plan: InstallPlan): string[] {
  return [
    '/usr/bin/flatcar-install',
    '-b',
    plan.mirrorBase,
    '-C',
    plan.channel,
    ...(plan.version === undefined ? [] : ['-V', plan.version]),
    '-B',
    plan.board,
    '-o',
    '""',
    '-d',
    plan.disk,
    '-i',
    installedConfigPath,
  ];
}

export function installPlanFor(
  profile: BootProfile,
  version: string | undefined,
  mirrorBaseUrl: string,
  configUrl: string,
  sources: readonly SourceConfig[],
): InstallPlan | undefined {
  if (profile.install === undefined) return undefined;
  const channel = profile.install.channel ?? profile.channel;
  const sameRelease = channel === profile.channel && profile.version !== 'current';
  return {
    mirrorBase: `${mirrorBaseUrl}/${channelFolder(sources, channel)}/${profile.board}`,
    channel,
    board: profile.board,
    ...(sameRelease && version !== undefined ? { version } : {}),
    disk: profile.install.disk,
    configUrl,
  };
}

/**
 * The Ignition config a machine of an install-to-disk profile gets while it runs from RAM: it fetches the
 * instance's own config to a file, installs to disk with flatcar-install from the mirror, and reboots.
 * Spec 3.3.0, which every Flatcar Ignition that boots from this mirror reads.
 */
export function installerConfig(plan: InstallPlan): Record<string, unknown> {
  const unit = [
    '[Unit]',
    'Description=Install Flatcar Container Linux to disk from the cldist mirror, then reboot',
    'Wants=network-online.target',
    'After=network-online.target',
    'ConditionPathExists=!/run/cldist-installed',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${flatcarInstallArgs(plan).join(' ')}`,
    'ExecStartPost=/usr/bin/touch /run/cldist-installed',
    'ExecStartPost=/usr/bin/systemctl --no-block reboot',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  return {
    ignition: { version: '3.3.0' },
    storage: {
      files: [
        {
          path: installedConfigPath,
          mode: 0o600,
          overwrite: true,
          contents: { source: plan.configUrl },
        },
      ],
    },
    systemd: { units: [{ name: installUnitName, enabled: true, contents: unit }] },
  };
}
