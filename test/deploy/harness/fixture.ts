import { cp, mkdtemp, readdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { inject } from 'vitest';
import { emulatorClients } from '../../support/emulators.ts';
import { Deployment } from './deployment.ts';
import type { CfnTemplate, SynthesizedAssembly } from './template.ts';

export interface DeployStackOptions {
  /** Changes a copy of the template before anything is stood up. */
  editTemplate?: (template: CfnTemplate) => void;
  /** Another cloud assembly, e.g. one from `copyAssembly` with a broken bundle. */
  assembly?: SynthesizedAssembly;
}

/** The run's synthesized cloud assembly (see global-setup.ts). */
export function runAssembly(): SynthesizedAssembly {
  const fixture = inject('deployFixture');
  return { outdir: fixture.outdir, templateFile: fixture.templateFile };
}

/**
 * The run's synthesized stack stood up afresh on the shared emulators (its own uniquely named tables,
 * buckets, queues and topics), for one test file. Call `close` in afterAll: it stops the warm containers.
 */
export async function deployStack(options: DeployStackOptions = {}): Promise<Deployment> {
  const fixture = inject('deployFixture');
  return Deployment.create({
    assembly: options.assembly ?? runAssembly(),
    endpoints: {
      fauxqs: inject('fauxqsEndpoint'),
      dynamodb: inject('dynamodbEndpoint'),
      secretsManager: inject('secretsManagerEndpoint'),
    },
    clients: emulatorClients(),
    stackName: fixture.stackName,
    ...(options.editTemplate === undefined ? {} : { editTemplate: options.editTemplate }),
  });
}

/**
 * A copy of the run's assembly in which the assets named by `copied` (directory names, `asset.<hash>`)
 * are real copies a test may break, and every other asset is a link to the original.
 */
export async function copyAssembly(copied: string[]): Promise<SynthesizedAssembly> {
  const source = runAssembly();
  const outdir = await mkdtemp(join(tmpdir(), 'cldist-deploy-copy-'));
  for (const entry of await readdir(source.outdir)) {
    const from = join(source.outdir, entry);
    if (copied.includes(entry) || !entry.startsWith('asset.')) {
      await cp(from, join(outdir, entry), { recursive: true });
    } else {
      await symlink(from, join(outdir, entry));
    }
  }
  return { outdir, templateFile: join(outdir, basename(source.templateFile)) };
}
