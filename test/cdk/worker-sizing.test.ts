import { describe, expect, it } from 'vitest';
import { buildApp } from '../../cdk/build-app.ts';
import { lambdaMaxTimeoutSeconds, oneVcpuMemoryMiB, sizeWorker } from '../../cdk/worker-sizing.ts';
import { parseConfig } from '../../shared/config.ts';
import { ConfigError } from '../../shared/errors.ts';
import { fixtureEntries, fixtureEntry } from './support.ts';

const GiB = 1024 ** 3;

describe('worker sizing', () => {
  it('gives a realistic 1 GiB image twice its transfer time at 50 MB/s plus overhead, on one full vCPU', () => {
    const size = sizeWorker(parseConfig({ limits: { maxArtifactBytes: GiB } }), 50);
    expect(size.timeoutSeconds).toBe(Math.ceil((GiB / 50e6) * 2 + 60));
    expect(size.memoryMiB).toBe(oneVcpuMemoryMiB);
    expect(size.ephemeralStorageMiB).toBe(512);
  });

  it('sizes the default 8 GiB cap within Lambda limits', () => {
    const size = sizeWorker(parseConfig({}), 50);
    expect(size.timeoutSeconds).toBe(404);
    expect(size.timeoutSeconds).toBeLessThanOrEqual(lambdaMaxTimeoutSeconds);
  });

  it('grows memory with upload buffers beyond the one-vCPU floor', () => {
    const size = sizeWorker(parseConfig({ worker: { partSizeMiB: 128, partsInFlight: 8 } }), 50);
    expect(size.memoryMiB).toBe(256 + 2 * 128 * 8);
  });

  it('refuses an artifact cap that cannot finish in 15 minutes, naming the fields to change', () => {
    const config = parseConfig({ limits: { maxArtifactBytes: 30 * GiB } });
    expect(() => sizeWorker(config, 50)).toThrow(ConfigError);
    expect(() => sizeWorker(config, 50)).toThrow(/limits\.maxArtifactBytes .* minThroughputMBps/);
    expect(sizeWorker(config, 100).timeoutSeconds).toBeLessThanOrEqual(lambdaMaxTimeoutSeconds);
  });
});

describe('stack refusals at synth time', () => {
  const context = { 'aws:cdk:bundling-stacks': [] };

  it('names a missing handler entry instead of failing inside the bundler', () => {
    expect(() =>
      buildApp({
        context: { ...context, 'cldist:config': {} },
        entries: { ...fixtureEntries, worker: fixtureEntry.replace('handler.ts', 'missing.ts') },
      }),
    ).toThrow(
      /handler test\/cdk\/fixtures\/missing\.ts does not exist; the Worker function is built from it/,
    );
  });

  it('refuses a config too large for the 4 KiB Lambda environment', () => {
    const artifacts = Array.from({ length: 80 }, (_, i) => ({
      name: `flatcar_production_artifact_number_${i}.bin`,
    }));
    expect(() =>
      buildApp({ context: { ...context, 'cldist:config': { artifacts } }, entries: fixtureEntries }),
    ).toThrow(/environment would be about \d+ bytes, over Lambda's 4096/);
  });

  it('refuses keyring files that would collide in the bundle', () => {
    const keyring = {
      files: ['keys/Flatcar_Image_Signing_Key.asc', '/work/elsewhere/keys/Flatcar_Image_Signing_Key.asc'],
    };
    expect(() =>
      buildApp({ context: { ...context, 'cldist:config': { keyring } }, entries: fixtureEntries }),
    ).toThrow(/keyring\.files: two files are named Flatcar_Image_Signing_Key\.asc/);
  });

  it('refuses a keyring file that does not exist', () => {
    const keyring = { files: ['keys/Nobody.asc'] };
    expect(() =>
      buildApp({ context: { ...context, 'cldist:config': { keyring } }, entries: fixtureEntries }),
    ).toThrow(/keys\/Nobody\.asc bundled into the Poller function does not exist/);
  });
});
