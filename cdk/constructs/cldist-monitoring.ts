import { Aws, Duration, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import {
  type CustomThreshold,
  DefaultDashboardFactory,
  MonitoringFacade,
  SnsAlarmActionStrategy,
} from 'cdk-monitoring-constructs';
import { Construct } from 'constructs';
import {
  type MetricName,
  metricNames,
  metricNamespace,
  type ServiceName,
  serviceDimension,
  serviceNames,
} from '../../shared/telemetry-names.ts';
import type { WorkerQueue } from './worker-queue.ts';

export interface CldistMonitoringProps {
  /** Every alarm notifies this topic when it goes into ALARM (not when it returns to OK). */
  alarmTopic: sns.ITopic;
  /** The job queue and its dead-letter queue. */
  jobs: WorkerQueue;
  poller: lambda.IFunction;
  worker: lambda.IFunction;
  apiFunction: lambda.IFunction;
  httpApi: apigw.IHttpApi;
  /** The ledger table. */
  table: dynamodb.ITable;
  /**
   * How often the schedule runs the poller. The poller's alarms evaluate periods of this length, so one
   * skipped or failed run is one breaching period.
   */
  pollEvery: Duration;
  /**
   * The HTTP API stage the API alarms and graphs read.
   * @default '$default'
   */
  apiStage?: string;
  /**
   * 5xx answers in five minutes that raise the API alarm. Some 503s are deliberate (a config not ready
   * yet), so the threshold is above one.
   * @default 10
   */
  api5xxPerFiveMinutes?: number;
  /**
   * Schedule periods without a poller run before the not-running alarm fires.
   * @default 3
   */
  pollerMissedRuns?: number;
  /**
   * Prefix of every alarm name. Alarm names are unique per account and region, as is the stack name.
   * @default the stack name
   */
  alarmNamePrefix?: string;
  /**
   * Name of the dashboard. Dashboard names are unique per account across regions, so the default
   * includes the region.
   * @default `{stack name}-{region}`
   */
  dashboardName?: string;
  /**
   * The time range the dashboard opens with.
   * @default Duration.days(1)
   */
  dashboardRange?: Duration;
}

/** Alarm names operators find in the runbook (docs/aws.md, Operate), after the prefix. */
export const alarmNames = {
  deadLetter: 'DeadLetterAlarm',
  workerErrors: 'WorkerErrorsAlarm',
  pollerErrors: 'PollerErrorsAlarm',
  pollChannelErrors: 'PollChannelErrorsAlarm',
  pollerNotRunning: 'PollerNotRunningAlarm',
  api5xx: 'Api5xxAlarm',
  signingKeyExpiring: 'SigningKeyExpiringAlarm',
  pruneFailures: 'PruneFailuresAlarm',
} as const;

/** The alarms shown and alarmed at one level; cdk-monitoring-constructs keys thresholds by it. */
const level = 'Critical';

/** The ledger's operations whose throttling the dashboard shows, one line each. */
const ledgerOperations = [
  dynamodb.Operation.PUT_ITEM,
  dynamodb.Operation.UPDATE_ITEM,
  dynamodb.Operation.GET_ITEM,
  dynamodb.Operation.QUERY,
];

/** Every graph and every alarm without its own period aggregates five minutes. */
const defaultPeriod = Duration.minutes(5);

/**
 * The operator's view of a deployment: every alarm, each notifying the operator topic, and one dashboard,
 * built with cdk-monitoring-constructs so the AWS services' metrics, statistics and graph layout come
 * from a maintained library. cldist's own metrics are read under the names in shared/telemetry-names.ts,
 * which the emitting code imports too.
 *
 * The alarms: a job dead-lettered, the worker or the poller crashing, a channel unreadable in two polls
 * running, the poller not running for `pollerMissedRuns` periods, the API answering too many 5xx, a
 * signing subkey about to expire, and retention failing in two polls running.
 */
export class CldistMonitoring extends Construct {
  readonly alarms: cloudwatch.AlarmBase[];
  readonly dashboard: cloudwatch.Dashboard;
  private readonly alarmNamePrefix: string;

  constructor(scope: Construct, id: string, props: CldistMonitoringProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.alarmNamePrefix = props.alarmNamePrefix ?? stack.stackName;
    const dashboards = new DefaultDashboardFactory(this, 'Dashboards', {
      dashboardNamePrefix: props.dashboardName ?? `${stack.stackName}-${Aws.REGION}`,
      createDashboard: true,
      createSummaryDashboard: false,
      createAlarmDashboard: false,
      detailDashboardRange: props.dashboardRange ?? Duration.days(1),
    });
    const facade = new MonitoringFacade(this, 'Facade', {
      metricFactoryDefaults: { namespace: metricNamespace, period: defaultPeriod },
      alarmFactoryDefaults: {
        alarmNamePrefix: this.alarmNamePrefix,
        actionsEnabled: true,
        action: new SnsAlarmActionStrategy({ onAlarmTopic: props.alarmTopic }),
      },
      dashboardFactory: dashboards,
    });
    facade.addWidget(
      new cloudwatch.TextWidget({
        markdown:
          '# cldist\nMirror pipeline (poller → jobs queue → worker), instance config API, and key expiry. ' +
          'Alarms notify the operator topic; runbook in docs/aws.md.',
        width: 24,
        height: 2,
      }),
    );
    const pollPeriod = Duration.minutes(Math.max(defaultPeriod.toMinutes(), props.pollEvery.toMinutes()));
    this.monitorJobs(facade, props);
    this.monitorMirrorFunctions(facade, props, pollPeriod);
    this.monitorPollerMetrics(facade, pollPeriod);
    this.monitorApi(facade, props);
    this.monitorLedger(facade, props);

    const dashboard = dashboards.createdDashboard();
    if (dashboard === undefined) {
      throw new Error(`${this.node.path}: the dashboard factory created no dashboard`);
    }
    this.dashboard = dashboard;
    this.alarms = facade.createdAlarms().map((created) => created.alarm);
  }

  /** The settings every alarm shares: its runbook name and description, one datapoint, missing data OK. */
  private alarm(name: keyof typeof alarmNames, description: string, settings: Partial<CustomThreshold> = {}) {
    return {
      alarmNameOverride: `${this.alarmNamePrefix}-${alarmNames[name]}`,
      alarmDescriptionOverride: description,
      datapointsToAlarm: 1,
      evaluationPeriods: 1,
      treatMissingDataOverride: cloudwatch.TreatMissingData.NOT_BREACHING,
      comparisonOperatorOverride: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      ...settings,
    };
  }

  private monitorJobs(facade: MonitoringFacade, props: CldistMonitoringProps): void {
    facade.monitorSqsQueueWithDlq({
      queue: props.jobs.queue,
      deadLetterQueue: props.jobs.deadLetterQueue,
      alarmFriendlyName: 'Jobs',
      humanReadableName: 'Jobs queue',
      addDeadLetterQueueMaxSizeAlarm: {
        [level]: {
          maxMessageCount: 0,
          ...this.alarm(
            'deadLetter',
            'Jobs were dead-lettered after every retry. Inspect them and redrive (docs/aws.md, Operate).',
            { comparisonOperatorOverride: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD },
          ),
        },
      },
    });
    facade.monitorCustom({
      alarmFriendlyName: 'JobsInFlight',
      humanReadableName: 'Jobs in flight',
      metricGroups: [
        {
          title: 'Jobs being worked on',
          metrics: [
            props.jobs.queue.metricApproximateNumberOfMessagesNotVisible({
              statistic: 'Maximum',
              label: 'in flight',
            }),
          ],
        },
      ],
    });
  }

  private monitorMirrorFunctions(
    facade: MonitoringFacade,
    props: CldistMonitoringProps,
    pollPeriod: Duration,
  ): void {
    const missedRuns = props.pollerMissedRuns ?? 3;
    facade.monitorLambdaFunction({
      lambdaFunction: props.worker,
      alarmFriendlyName: 'Worker',
      humanReadableName: 'Mirror worker',
      addFaultCountAlarm: {
        [level]: {
          maxErrorCount: 1,
          ...this.alarm(
            'workerErrors',
            'The mirror worker crashed or timed out (not a reported job failure).',
          ),
        },
      },
    });

    facade.monitorLambdaFunction({
      lambdaFunction: props.poller,
      alarmFriendlyName: 'Poller',
      humanReadableName: 'Poller',
      addFaultCountAlarm: {
        [level]: {
          maxErrorCount: 1,
          ...this.alarm('pollerErrors', 'The poller failed; new releases are not being picked up.', {
            period: pollPeriod,
          }),
        },
      },
      addMinInvocationsCountAlarm: {
        [level]: {
          minCount: 1,
          ...this.alarm('pollerNotRunning', `The poller has not run for ${missedRuns} schedule periods.`, {
            period: pollPeriod,
            evaluationPeriods: missedRuns,
            datapointsToAlarm: missedRuns,
            comparisonOperatorOverride: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treatMissingDataOverride: cloudwatch.TreatMissingData.BREACHING,
          }),
        },
      },
    });
  }

  /** cldist's own poller metrics: channels not read and releases claimed per run, failed retention, expiring keys. */
  private monitorPollerMetrics(facade: MonitoringFacade, pollPeriod: Duration): void {
    facade.monitorCustom({
      alarmFriendlyName: 'PollerRuns',
      humanReadableName: 'Poller runs',
      metricGroups: [
        {
          title: 'Channels not read, releases claimed',
          metrics: [
            {
              metric: serviceMetric(serviceNames.poller, metricNames.pollErrors, 'Sum', pollPeriod),
              alarmFriendlyName: 'PollChannelErrors',
              addAlarm: {
                [level]: {
                  threshold: 1,
                  comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                  ...this.alarm(
                    'pollChannelErrors',
                    'A channel could not be polled in two periods running (the poller reports these without failing).',
                    { evaluationPeriods: 2, datapointsToAlarm: 2 },
                  ),
                },
              },
            },
            serviceMetric(serviceNames.poller, metricNames.releasesClaimed, 'Sum', pollPeriod),
          ],
        },
        {
          title: 'Retention sweeps failed',
          metrics: [
            {
              metric: serviceMetric(serviceNames.poller, metricNames.pruneFailures, 'Sum', pollPeriod),
              alarmFriendlyName: metricNames.pruneFailures,
              addAlarm: {
                [level]: {
                  threshold: 1,
                  comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                  ...this.alarm(
                    'pruneFailures',
                    'Retention failed in two polls running: old releases are not being deleted, or one is left half-deleted (log event retention.prune_failed).',
                    { evaluationPeriods: 2, datapointsToAlarm: 2 },
                  ),
                },
              },
            },
          ],
        },
        {
          title: 'Signing subkeys expiring soon',
          metrics: [
            {
              metric: serviceMetric(
                serviceNames.poller,
                metricNames.signingKeyExpiring,
                'Maximum',
                Duration.hours(1),
              ),
              alarmFriendlyName: metricNames.signingKeyExpiring,
              addAlarm: {
                [level]: {
                  threshold: 1,
                  comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                  ...this.alarm(
                    'signingKeyExpiring',
                    'The newest valid image signing subkey expires soon. Import the rotated key (docs/aws.md, Rotating keys).',
                  ),
                },
              },
            },
          ],
        },
      ],
    });
  }

  private monitorApi(facade: MonitoringFacade, props: CldistMonitoringProps): void {
    facade.monitorApiGatewayV2HttpApi({
      api: props.httpApi,
      apiStage: props.apiStage ?? '$default',
      alarmFriendlyName: 'Api',
      humanReadableName: 'Instance config API',
      add5xxCountAlarm: {
        [level]: {
          maxErrorCount: props.api5xxPerFiveMinutes ?? 10,
          ...this.alarm(
            'api5xx',
            'The API answered too many 5xx. Some 503s are deliberate (config not ready); a burst is not.',
          ),
        },
      },
    });
    facade.monitorLambdaFunction({
      lambdaFunction: props.apiFunction,
      alarmFriendlyName: 'ApiFunction',
      humanReadableName: 'API function',
    });
    facade.monitorCustom({
      alarmFriendlyName: 'ApiFetches',
      humanReadableName: 'Refused instance config fetches',
      metricGroups: [
        {
          title: 'Wrong token or unknown instance',
          metrics: [
            serviceMetric(serviceNames.api, metricNames.fetchesRefused, 'Sum', defaultPeriod),
            serviceMetric(serviceNames.api, metricNames.unknownInstanceFetches, 'Sum', defaultPeriod),
          ],
        },
      ],
    });
  }

  private monitorLedger(facade: MonitoringFacade, props: CldistMonitoringProps): void {
    facade.monitorDynamoTable({
      table: props.table,
      alarmFriendlyName: 'Ledger',
      humanReadableName: 'Ledger table',
    });
    facade.monitorCustom({
      alarmFriendlyName: 'LedgerThrottles',
      humanReadableName: 'Ledger throttled requests',
      metricGroups: [
        {
          title: 'Throttled requests by operation',
          metrics: ledgerOperations.map(
            (operation) =>
              new cloudwatch.Metric({
                namespace: 'AWS/DynamoDB',
                metricName: 'ThrottledRequests',
                dimensionsMap: { TableName: props.table.tableName, Operation: operation },
                period: defaultPeriod,
                statistic: 'Sum',
                label: operation,
              }),
          ),
        },
      ],
    });
  }
}

/**
 * One of cldist's own metrics as Powertools Metrics publishes it: the `service` dimension is always
 * there, and an alarm must match a metric's dimensions exactly.
 */
function serviceMetric(
  service: ServiceName,
  metricName: MetricName,
  statistic: string,
  period: Duration,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: metricNamespace,
    metricName,
    dimensionsMap: { [serviceDimension]: service },
    statistic,
    period,
  });
}
