import { describe, expect, it } from 'vitest';
import { validateCloudConfig } from '../../shared/instances/cloud-config.ts';

describe('cloud-config validation', () => {
  it('accepts a cloud-config', () => {
    const text = '#cloud-config\nhostname: node-1\nssh_authorized_keys:\n  - ssh-ed25519 AAAA core\n';
    expect(validateCloudConfig(text)).toEqual([]);
    expect(validateCloudConfig('#cloud-config\r\nhostname: a\r\n')).toEqual([]);
    expect(validateCloudConfig('#cloud-config\n')).toEqual([]);
  });

  it('rejects text without the #cloud-config first line', () => {
    expect(validateCloudConfig('hostname: a\n')).toEqual([
      { path: '$.cloudConfig', message: 'expected the first line to be "#cloud-config"' },
    ]);
    expect(validateCloudConfig('#!/bin/sh\necho hi\n')[0]?.message).toMatch(/#cloud-config/);
    expect(validateCloudConfig('')[0]?.message).toMatch(/#cloud-config/);
  });

  it('rejects YAML that does not parse, with its line', () => {
    const issues = validateCloudConfig('#cloud-config\nhostname: [a\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('$.cloudConfig');
    expect(issues[0]?.message).toMatch(/^not valid YAML: line \d+ column \d+/);
  });

  it('rejects duplicate keys and a non-mapping document', () => {
    expect(validateCloudConfig('#cloud-config\na: 1\na: 2\n')[0]?.message).toMatch(/not valid YAML/);
    expect(validateCloudConfig('#cloud-config\n- a\n- b\n')[0]?.message).toMatch(/mapping/);
  });
});
