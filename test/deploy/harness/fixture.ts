import { inject } from 'vitest';
import { emulatorClients } from '../../support/emulators.ts';
import { Deployment } from './deployment.ts';
import type { CfnTemplate } from './template.ts';

/**
 * The run's synthesized stack stood up afresh on the shared emulators (its own uniquely named tables,
 * buckets, queues and topics), for one test file. Call `close` in afterAll: it stops the warm containers.
 */
export async function deployStack(editTemplate?: (template: CfnTemplate) => void): Promise<Deployment> {
  const fixture = inject('deployFixture');
  return Deployment.create({
    assembly: { outdir: fixture.outdir, templateFile: fixture.templateFile },
    endpoints: { fauxqs: inject('fauxqsEndpoint'), dynamodb: inject('dynamodbEndpoint') },
    clients: emulatorClients(),
    stackName: fixture.stackName,
    ...(editTemplate === undefined ? {} : { editTemplate }),
  });
}
