import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../cdk/build-app.ts';
import { acknowledge } from '../../cdk/nag.ts';
import { fixtureEntries, synthesizeDefault } from './support.ts';

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

describe('cdk-nag AwsSolutions', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'cldist-nag-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('passes the stack with no unacknowledged finding', () => {
    expect(() => synthesizeDefault()).not.toThrow();
  });

  it('is really running: a careless bucket added to the stack fails the synth with its findings', () => {
    const { app, stack } = buildApp({
      context: { 'aws:cdk:bundling-stacks': [], 'cldist:config': {} },
      entries: fixtureEntries,
      outdir,
    });
    new s3.Bucket(stack, 'Careless');
    expect(() => app.synth()).toThrow(/AwsSolutions-S10/);
    const report = JSON.parse(
      readFileSync(join(outdir, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
    const violations = report.pluginReports.flatMap((plugin) =>
      plugin.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
    );
    expect(violations.sort()).toEqual([
      'AwsSolutions-S1 Cldist/Careless/Resource',
      'AwsSolutions-S10 Cldist/Careless/Resource',
    ]);
  });

  it('acknowledges exactly the expected findings, each with a written reason', () => {
    const { stack } = synthesizeDefault();
    const acknowledged = stack.node.findAll().flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
            at: `${construct.node.path} ${id.replace(/^Annotation::/, '')}`,
            reason,
          })),
        ),
    );
    for (const { at, reason } of acknowledged) {
      expect(reason.length, at).toBeGreaterThanOrEqual(40);
    }
    const mirror = stack.getLogicalId(stack.node.findChild('MirrorBucket').node.defaultChild as s3.CfnBucket);
    const config = stack.getLogicalId(stack.node.findChild('ConfigBucket').node.defaultChild as s3.CfnBucket);
    expect(acknowledged.map((a) => a.at).sort()).toEqual(
      [
        'Cldist/MirrorBucket AwsSolutions-S1',
        'Cldist/ConfigBucket AwsSolutions-S1',
        'Cldist/Jobs/DeadLetter AwsSolutions-SQS3',
        'Cldist/Poller AwsSolutions-L1',
        'Cldist/Worker AwsSolutions-L1',
        'Cldist/ApiHandler AwsSolutions-L1',
        'Cldist/PollerRole AwsSolutions-IAM5[Resource::*]',
        'Cldist/WorkerRole AwsSolutions-IAM5[Resource::*]',
        'Cldist/ApiHandlerRole AwsSolutions-IAM5[Resource::*]',
        `Cldist/WorkerRole AwsSolutions-IAM5[Resource::<${mirror}.Arn>/*]`,
        `Cldist/PollerRole AwsSolutions-IAM5[Resource::<${mirror}.Arn>/*]`,
        `Cldist/ApiHandlerRole AwsSolutions-IAM5[Resource::<${config}.Arn>/*]`,
        'Cldist/Api/GET--v1--instances--{id}--ignition AwsSolutions-APIG4',
        'Cldist/Api/GET--v1--instances--{id}--cloud-config AwsSolutions-APIG4',
        'Cldist/Api/GET--v1--metadata--{proxy+} AwsSolutions-APIG4',
        'Cldist/Api/HEAD--v1--metadata--{proxy+} AwsSolutions-APIG4',
        'Cldist/Api/PUT--v1--metadata--{proxy+} AwsSolutions-APIG4',
        'Cldist/Api/GET--boot.ipxe AwsSolutions-APIG4',
        'Cldist/Api/GET--v1--boot--ipxe AwsSolutions-APIG4',
        'Cldist/Api/GET--v1--boot--grub AwsSolutions-APIG4',
        'Cldist/Api/GET--v1--boot--instances--{id}--ignition AwsSolutions-APIG4',
        'Cldist/Api/POST--v1--update AwsSolutions-APIG4',
        'Cldist/MetadataProxySecret/Secret AwsSolutions-SMG4',
        'Cldist/MirrorDistribution AwsSolutions-CFR1',
        'Cldist/MirrorDistribution AwsSolutions-CFR2',
        'Cldist/MirrorDistribution AwsSolutions-CFR3',
        'Cldist/MirrorDistribution AwsSolutions-CFR4',
      ].sort(),
    );
  });

  it('refuses an acknowledgement without a real reason', () => {
    const stack = new Stack();
    expect(() => acknowledge(stack, 'AwsSolutions-S1', 'not needed')).toThrow(/needs a real reason/);
  });
});
