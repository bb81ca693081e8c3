import { beforeAll, describe, expect, it } from 'vitest';
import { metricNames, serviceNames } from '../../shared/telemetry-names.ts';
import { type CfnResource, idOf, logicalIdsOfType, type Synthesized, synthesizeDefault } from './support.ts';
import {
  literalTelemetryNames,
  loadProductSources,
  type Sources,
  unlinkedAlarms,
} from './telemetry-links.ts';

/** The template with one alarm's properties changed, everything else shared. */
function withAlarm(
  resources: Record<string, CfnResource>,
  alarmName: string,
  change: (properties: Record<string, unknown>) => Record<string, unknown>,
): Record<string, CfnResource> {
  const id = idOf(resources, 'AWS::CloudWatch::Alarm', `MonitoringFacadeCldist${alarmName}`);
  const alarm = resources[id];
  if (alarm === undefined) throw new Error(`no alarm ${id}`);
  return { ...resources, [id]: { ...alarm, Properties: change(structuredClone(alarm.Properties ?? {})) } };
}

describe('every alarmed metric is emitted by code the alarmed function runs', () => {
  let synth: Synthesized;
  let sources: Sources;
  beforeAll(() => {
    synth = synthesizeDefault();
    sources = loadProductSources();
  });

  it('links each alarm of the default stack to its emitter, custom metrics to an addMetric call', () => {
    expect(logicalIdsOfType(synth.resources, 'AWS::CloudWatch::Alarm').length).toBeGreaterThan(0);
    expect(unlinkedAlarms(synth.resources, sources)).toEqual([]);
  });

  it('refuses an alarm on a metric name no constant holds (a rename on one side only)', () => {
    const renamed = withAlarm(synth.resources, 'PollChannelErrors', (p) => ({
      ...p,
      MetricName: 'PollError',
    }));
    expect(unlinkedAlarms(renamed, sources)).toEqual([
      expect.stringMatching(/cldist\/PollError: not one of metricNames/),
    ]);
  });

  it('refuses an alarm when no module of the emitting function calls addMetric with that constant', () => {
    const withoutEmitter = new Map(
      [...sources].map(([path, text]) => [
        path,
        text.replaceAll('addMetric(metricNames.signingKeyExpiring', 'addMetric(metricNames.releasesClaimed'),
      ]),
    );
    expect(unlinkedAlarms(synth.resources, withoutEmitter)).toEqual([
      expect.stringMatching(
        /SigningKeyExpiring: no module the cldist-poller function loads calls addMetric\(metricNames\.signingKeyExpiring\)/,
      ),
    ]);
  });

  it('refuses an alarm whose service dimension names a function that never emits the metric', () => {
    const wrongService = withAlarm(synth.resources, 'SigningKeyExpiring', (p) => ({
      ...p,
      Dimensions: [{ Name: 'service', Value: serviceNames.api }],
    }));
    expect(unlinkedAlarms(wrongService, sources)).toEqual([
      expect.stringMatching(/no module the cldist-api function loads calls addMetric/),
    ]);
    const unknownService = withAlarm(synth.resources, 'SigningKeyExpiring', (p) => ({
      ...p,
      Dimensions: [{ Name: 'service', Value: 'cldist-signer' }],
    }));
    expect(unlinkedAlarms(unknownService, sources)).toEqual([
      expect.stringMatching(/service dimension "cldist-signer" is no deployed function/),
    ]);
  });

  it('refuses an AWS metric alarm whose resource dimension names nothing in the template', () => {
    const dangling = withAlarm(synth.resources, 'DeadLetter', (p) => {
      const queries = p.Metrics as { MetricStat: { Metric: { Dimensions: unknown[] } } }[];
      for (const query of queries) {
        query.MetricStat.Metric.Dimensions = [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': ['Gone', 'QueueName'] } },
        ];
      }
      return p;
    });
    expect(unlinkedAlarms(dangling, sources)).toEqual([
      expect.stringMatching(/ApproximateNumberOfMessagesVisible: its QueueName names no AWS::SQS::Queue/),
    ]);
  });

  it('finds every metric and service name in product code only as the shared constant', () => {
    expect(literalTelemetryNames(sources)).toEqual([]);
    const planted = new Map(sources).set(
      'shared/planted.ts',
      `metrics.addMetric('${metricNames.pollErrors}')`,
    );
    expect(literalTelemetryNames(planted)).toEqual(['shared/planted.ts']);
  });
});
