import type { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
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
