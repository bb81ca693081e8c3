import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildApp, stackName } from '../../cdk/build-app.ts';
import { defaultConfigFile } from '../../cdk/settings.ts';
import { generateSimKey } from '../../local/sim-origin/signing.ts';
import { startSecretsManager } from './harness/secrets-manager.ts';

/** What the synthesis hands to the deploy tests. */
export interface DeployFixture {
  outdir: string;
  templateFile: string;
  stackName: string;
  /**
   * Where the tests must start the sim origin: the address baked into the deployed config. Spread into
   * `startSimOrigin`, `waitForAddressMs` makes files that need the origin take turns.
   */
  origin: { host: string; port: number; waitForAddressMs: number };
  /** The sim origin's signing key; its public half is the config's only trusted key. */
  originPrivateKeyArmored: string;
  originPrimaryFingerprint: string;
  /** The operator config the stack was synthesized from. */
  operatorConfig: Record<string, unknown>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    deployFixture: DeployFixture;
    /** moto's Secrets Manager, shared by the deploy test files like fauxqs and dynalite. */
    secretsManagerEndpoint: string;
  }
}

/**
 * Set to a directory to keep the synthesized assembly there and reuse it on the next run, while
 * iterating on a deploy test. Delete the directory (or unset this) after changing the stack or a handler.
 */
export const reuseVariable = 'CLDIST_DEPLOY_REUSE_DIR';

/**
 * A loopback address of its own and a port below Linux's ephemeral range, so nothing else on the machine
 * (outgoing connections, servers on port 0) takes it between now and when the origin listens.
 */
function originAddress(): DeployFixture['origin'] {
  return {
    host: `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`,
    port: randomInt(20_000, 32_000),
    // Long enough for another file to finish its mirror cases on a loaded 2-core machine.
    waitForAddressMs: 100_000,
  };
}

/**
 * Synthesizes the app with the real esbuild bundles, offline, from an operator config that changes only
 * the upstream origin (the sim origin) and its trusted key. The cloud assembly is what `cdk deploy`
 * would upload; the deploy tests stand it up and run its bundles.
 */
async function synthesize(work: string): Promise<DeployFixture> {
  process.env.CDK_DISABLE_CLI_TELEMETRY = 'true';
  const key = await generateSimKey('curve25519');
  const origin = originAddress();
  const keyFile = join(work, 'sim-origin-signing-key.asc');
  await writeFile(keyFile, key.publicKeyArmored);
  const operatorConfig = {
    channels: [{ name: 'stable', baseUrl: `http://${origin.host}:${origin.port}/{channel}` }],
    keyring: { files: [keyFile], trustedFingerprints: [key.primaryFingerprint] },
  };
  // Read from the working directory under its default name, as `cdk synth` does for an operator.
  await writeFile(join(work, defaultConfigFile), JSON.stringify(operatorConfig, null, 2));
  const outdir = join(work, 'cdk.out');
  // Path metadata is what the CLI adds too; it names each function in the harness's messages.
  const { app, stack } = buildApp({ cwd: work, outdir, context: { 'aws:cdk:enable-path-metadata': true } });
  const artifact = app.synth().getStackByName(stack.stackName);
  return {
    outdir,
    templateFile: join(outdir, artifact.templateFile),
    stackName,
    origin,
    originPrivateKeyArmored: key.privateKey.armor(),
    originPrimaryFingerprint: key.primaryFingerprint,
    operatorConfig,
  };
}

/** Once per run (or once while CLDIST_DEPLOY_REUSE_DIR is kept), before any deploy test file. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const secretsManager = await startSecretsManager();
  project.provide('secretsManagerEndpoint', secretsManager.endpoint);
  const reuse = process.env[reuseVariable];
  if (reuse !== undefined && reuse !== '') {
    const dir = resolve(reuse);
    const saved = join(dir, 'fixture.json');
    if (!existsSync(saved)) {
      await mkdir(dir, { recursive: true });
      await writeFile(saved, JSON.stringify(await synthesize(dir)));
    }
    project.provide('deployFixture', JSON.parse(await readFile(saved, 'utf8')) as DeployFixture);
    return () => secretsManager.stop();
  }
  const work = await mkdtemp(join(tmpdir(), 'cldist-deploy-'));
  project.provide('deployFixture', await synthesize(work));
  return async () => {
    await secretsManager.stop();
    await rm(work, { recursive: true, force: true });
  };
}
