import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ScheduledEvent } from 'aws-lambda';
import type { MetricSink } from '../../shared/mirror/deps.ts';
import { type PollReport, runPoll } from '../../shared/mirror/poller.ts';
import type { MirrorRuntime } from '../../shared/mirror/runtime.ts';
import { metricNames, metricNamespace, serviceNames } from '../../shared/telemetry-names.ts';

const logger = new Logger({ serviceName: serviceNames.poller });
const metrics = new Metrics({ namespace: metricNamespace, serviceName: serviceNames.poller });

/**
 * One scheduled run; per-channel failures are in the report and in the `PollErrors` metric, failed
 * retention in `PruneFailures`.
 */
export function createPollerHandler(
  load: () => Promise<MirrorRuntime>,
  sink: MetricSink & { publishStoredMetrics(): void } = metrics,
): (event: ScheduledEvent) => Promise<PollReport> {
  return async (event) => {
    const { deps, config } = await load();
    try {
      const report = await runPoll({ ...deps, metrics: sink }, config);
      const errors = report.results.filter((r) => r.outcome === 'error').length;
      sink.addMetric(metricNames.pollErrors, MetricUnit.Count, errors);
      sink.addMetric(
        metricNames.releasesClaimed,
        MetricUnit.Count,
        report.results.filter((r) => r.outcome === 'new-release').length,
      );
      sink.addMetric(metricNames.pruneFailures, MetricUnit.Count, report.pruneFailures);
      deps.logger.info('poll.done', {
        time: event.time,
        results: report.results,
        resent: report.resent,
        pruned: report.pruned,
      });
      return report;
    } finally {
      sink.publishStoredMetrics();
    }
  };
}

let runtime: Promise<MirrorRuntime> | undefined;

export const handler = createPollerHandler(() => {
  runtime ??= import('../../shared/mirror/wiring.ts').then((wiring) =>
    wiring.loadMirrorRuntime(process.env, { logger, role: 'poller' }),
  );
  return runtime;
});
