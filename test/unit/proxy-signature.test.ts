import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  addressSignatureValid,
  instanceIdSignatureValid,
  signAddress,
  signInstanceId,
} from '../../shared/metadata/proxy-signature.ts';

describe('metadata proxy signatures', () => {
  it('signs an instance id as Nova does: hex HMAC-SHA256 of the id', () => {
    const expected = createHmac('sha256', 's3cret').update('vm-1').digest('hex');
    expect(signInstanceId('s3cret', 'vm-1')).toBe(expected);
    expect(instanceIdSignatureValid(['s3cret'], 'vm-1', expected)).toBe(true);
    expect(instanceIdSignatureValid(['s3cret'], 'vm-1', expected.toUpperCase())).toBe(true);
  });

  it('refuses a wrong, missing, malformed or other-instance signature', () => {
    const good = signInstanceId('s3cret', 'vm-1');
    expect(instanceIdSignatureValid(['s3cret'], 'vm-2', good)).toBe(false);
    expect(instanceIdSignatureValid(['other'], 'vm-1', good)).toBe(false);
    expect(instanceIdSignatureValid(['s3cret'], 'vm-1', undefined)).toBe(false);
    expect(instanceIdSignatureValid(['s3cret'], 'vm-1', good.slice(1))).toBe(false);
    expect(instanceIdSignatureValid(['s3cret'], 'vm-1', `${good.slice(0, 63)}g`)).toBe(false);
    expect(instanceIdSignatureValid([], 'vm-1', good)).toBe(false);
  });

  it('accepts the old or the new secret during a rotation', () => {
    const old = signInstanceId('old', 'vm-1');
    expect(instanceIdSignatureValid(['new', 'old'], 'vm-1', old)).toBe(true);
  });

  it('keeps address signatures apart from instance-id signatures', () => {
    const idSignature = signInstanceId('s3cret', '10.0.0.5');
    expect(addressSignatureValid(['s3cret'], '10.0.0.5', idSignature)).toBe(false);
    const addressSignature = signAddress('s3cret', '10.0.0.5');
    expect(addressSignatureValid(['s3cret'], '10.0.0.5', addressSignature)).toBe(true);
    expect(instanceIdSignatureValid(['s3cret'], '10.0.0.5', addressSignature)).toBe(false);
  });
});
