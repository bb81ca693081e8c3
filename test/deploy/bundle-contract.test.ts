import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Deployment } from './harness/deployment.ts';
import { scheduledEvent } from './harness/event-sources.ts';
import { copyAssembly, deployStack, runAssembly } from './harness/fixture.ts';
import { HttpApi } from './harness/http-api.ts';
import { FunctionContractError } from './harness/lambda-container.ts';
import { UnsupportedResourceError } from './harness/stand-ins.ts';
import {
  type CfnTemplate,
  readTemplate,
  type SynthesizedAssembly,
  templateFunctions,
} from './harness/template.ts';

/** The function resource whose construct path ends in `/${name}`, in a template being edited. */
function functionProps(template: CfnTemplate, name: string): Record<string, unknown> {
  const found = Object.values(template.Resources).find(
    (resource) =>
      resource.Type === 'AWS::Lambda::Function' &&
      resource.Metadata?.['aws:cdk:path'] === `Cldist/${name}/Resource`,
  );
  if (found?.Properties === undefined) throw new Error(`no function ${name} in the template`);
  return found.Properties;
}

function renameVariable(template: CfnTemplate, fn: string, from: string, to: string): void {
  const variables = (functionProps(template, fn).Environment as { Variables: Record<string, unknown> })
    .Variables;
  variables[to] = variables[from];
  delete variables[from];
}

/**
 * The harness is only worth having if a broken deployment fails it clearly: these break a copy of the
 * template or of a bundle on purpose and expect an error that names the function and what is wrong.
 */
describe('a broken deployment fails the deploy tests, naming the function and the cause', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0)) await step();
  });

  async function deploy(options: Parameters<typeof deployStack>[0]): Promise<Deployment> {
    const deployment = await deployStack(options);
    cleanup.push(() => deployment.close());
    return deployment;
  }

  async function brokenAsset(
    fn: string,
    edit: (assetDir: string) => Promise<void>,
  ): Promise<SynthesizedAssembly> {
    const source = runAssembly();
    const assetDir = templateFunctions(readTemplate(source), source).find(
      (f) => f.name === `Cldist/${fn}`,
    )?.assetDir;
    if (assetDir === undefined) throw new Error(`no function ${fn} in the template`);
    const assembly = await copyAssembly([basename(assetDir)]);
    cleanup.push(() => rm(assembly.outdir, { recursive: true, force: true }));
    await edit(join(assembly.outdir, basename(assetDir)));
    return assembly;
  }

  it('a variable the template spells differently fails the cold start of a function that parses it at init', async () => {
    const deployment = await deploy({
      editTemplate: (template) =>
        renameVariable(template, 'ApiHandler', 'CLDIST_RESOURCES', 'CLDIST_RESOURCE'),
    });
    const attempt = new HttpApi(deployment).request({ method: 'GET', path: '/v1/instances/a/ignition' });
    await expect(attempt).rejects.toThrow(FunctionContractError);
    await expect(attempt).rejects.toThrow(
      /function Cldist\/ApiHandler .*cannot start: .*CLDIST_RESOURCES is not set/s,
    );
    await expect(attempt).rejects.toThrow(/it read CLDIST_RESOURCES, which the template does not set/);
  });

  it('a variable read only when the first event arrives fails that invocation', async () => {
    const deployment = await deploy({
      editTemplate: (template) => renameVariable(template, 'Poller', 'CLDIST_CONFIG', 'CLDIST_CONFIGURATION'),
    });
    await expect(deployment.invoke('Poller', scheduledEvent(deployment, 'Poller'))).rejects.toThrow(
      /function Cldist\/Poller read environment variable CLDIST_CONFIG, which the template does not set/,
    );
  });

  it('a bundle that cannot import fails, naming the function and the missing module', async () => {
    const assembly = await brokenAsset('ApiHandler', async (dir) => {
      const file = join(dir, 'index.mjs');
      await writeFile(file, `import 'cldist-left-external';\n${await readFile(file, 'utf8')}`);
    });
    const deployment = await deploy({ assembly });
    await expect(deployment.container('ApiHandler')).rejects.toThrow(
      /function Cldist\/ApiHandler \(handler index\.handler\) cannot start: .*cldist-left-external/,
    );
  });

  it('a key file the config names but the asset lacks fails the function that loads the keyring', async () => {
    const assembly = await brokenAsset('Poller', (dir) => rm(join(dir, 'keys'), { recursive: true }));
    const deployment = await deploy({ assembly });
    await expect(deployment.invoke('Poller', scheduledEvent(deployment, 'Poller'))).rejects.toThrow(
      /function Cldist\/Poller failed: .*keyring\.files: cannot read \/var\/task\/keys\/sim-origin-signing-key\.asc/,
    );
  });

  it('a resource type without a stand-in is refused by name, before any function runs', async () => {
    const attempt = deployStack({
      editTemplate: (template) => {
        template.Resources.AdminSecret = {
          Type: 'AWS::SecretsManager::Secret',
          Metadata: { 'aws:cdk:path': 'Cldist/AdminSecret/Resource' },
        };
      },
    });
    await expect(attempt).rejects.toThrow(UnsupportedResourceError);
    await expect(attempt).rejects.toThrow(/AWS::SecretsManager::Secret \(Cldist\/AdminSecret\)/);
  });
});
