import { afterEach, describe, expect, it, vi } from 'vitest';

describe('the API Lambda handler at cold start', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('fails at once, naming the variable, when the deployment did not set it', async () => {
    vi.stubEnv('CLDIST_CONFIG', '');
    await expect(import('../../functions/api/handler.ts')).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(/CLDIST_CONFIG is not set/),
    });
  });

  it('fails at once when the config bucket is missing', async () => {
    vi.stubEnv('CLDIST_CONFIG', '{}');
    vi.stubEnv('CLDIST_RESOURCES', JSON.stringify({ tableName: 'cldist-ledger' }));
    await expect(import('../../functions/api/handler.ts')).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(/configBucket/),
    });
  });

  it('loads with a complete environment and exports the handler', async () => {
    vi.stubEnv('CLDIST_CONFIG', '{}');
    vi.stubEnv(
      'CLDIST_RESOURCES',
      JSON.stringify({ tableName: 'cldist-ledger', configBucket: 'cldist-configs' }),
    );
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    const module = await import('../../functions/api/handler.ts');
    expect(module.handler).toBeTypeOf('function');
  });
});
