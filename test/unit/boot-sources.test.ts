import { describe, expect, it } from 'vitest';
import { installPlanFor } from '../../shared/boot/installer.ts';
import { type BootProfile, channelFolder, profileStream } from '../../shared/boot/profiles.ts';
import { parseConfig } from '../../shared/config.ts';

const { sources } = parseConfig({
  sources: [
    { name: 'flatcar', channels: [{ name: 'stable' }] },
    { name: 'private', mirrorPath: 'own', channels: [{ name: 'stable' }, { name: 'edge' }] },
  ],
});

describe('boot profiles over several sources', () => {
  it('reads the channel from the first source that has it, in its mirror folder', () => {
    expect(profileStream(sources, 'stable', 'amd64-usr')).toEqual({
      source: 'flatcar',
      channel: 'stable',
      board: 'amd64-usr',
    });
    expect(profileStream(sources, 'edge', 'amd64-usr')?.source).toBe('private');
    expect(profileStream(sources, 'nightly', 'amd64-usr')).toBeUndefined();
    expect(channelFolder(sources, 'stable')).toBe('flatcar/stable');
    expect(channelFolder(sources, 'edge')).toBe('own/edge');
    const legacy = parseConfig({ channels: [{ name: 'stable' }] }).sources;
    expect(channelFolder(legacy, 'stable')).toBe('stable');
  });

  it('points flatcar-install at the install channel folder of its own source', () => {
    const profile: BootProfile = {
      name: 'disk',
      channel: 'stable',
      board: 'amd64-usr',
      version: 'current',
      kernelArgs: [],
      install: { disk: '/dev/sda', channel: 'edge' },
      createdAt: '',
      updatedAt: '',
    };
    const plan = installPlanFor(profile, '4081.2.0', 'http://m/mirror', 'http://api/config', sources);
    expect(plan?.mirrorBase).toBe('http://m/mirror/own/edge/amd64-usr');
    expect(plan?.channel).toBe('edge');
  });
});
