import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../cdk/build-app.ts';
import { projectRoot } from '../../shared/config.ts';
import { type CfnResource, fixtureEntries, idOf, propertiesOf } from './support.ts';

/**
 * Real esbuild bundling, offline, of a stand-in handler: proves the bundle is ESM with the require shim
 * and that the keyring files land where the deployed config says they are. The real handlers are bundled
 * by `npm run synth`.
 */
describe('function bundles', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'cldist-cdk-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('bundles each handler as ESM and copies the keyring only into the functions that verify', () => {
    const { app, stack } = buildApp({
      context: { 'cldist:config': { update: {} } },
      entries: fixtureEntries,
      outdir,
      cwd: projectRoot,
    });
    const assembly = app.synth();
    const template = assembly.getStackByName(stack.stackName).template as {
      Resources: Record<string, CfnResource>;
    };
    const assetOf = (prefix: string) => {
      const id = idOf(template.Resources, 'AWS::Lambda::Function', prefix);
      const key = (propertiesOf(template.Resources, id).Code as { S3Key: string }).S3Key;
      return join(outdir, `asset.${key.replace(/\.zip$/, '')}`);
    };
    for (const prefix of ['Poller', 'Worker']) {
      const asset = assetOf(prefix);
      expect(readdirSync(join(asset, 'keys')).sort()).toEqual([
        'CoreOS_Image_Signing_Key.asc',
        'Flatcar_Image_Signing_Key.asc',
      ]);
      expect(readFileSync(join(asset, 'keys', 'Flatcar_Image_Signing_Key.asc'), 'utf8')).toBe(
        readFileSync(join(projectRoot, 'keys', 'Flatcar_Image_Signing_Key.asc'), 'utf8'),
      );
      expect(readdirSync(join(asset, 'update-keys'))).toEqual([
        'flatcar-update-payload-key-official-v2.pub.pem',
      ]);
      const code = readFileSync(join(asset, 'index.mjs'), 'utf8');
      expect(code.startsWith('import { createRequire as cldistCreateRequire }')).toBe(true);
      expect(existsSync(join(asset, 'index.mjs.map'))).toBe(true);
    }
    expect(existsSync(join(assetOf('ApiHandler'), 'keys'))).toBe(false);
    expect(existsSync(join(assetOf('ApiHandler'), 'update-keys'))).toBe(false);
  });
});
