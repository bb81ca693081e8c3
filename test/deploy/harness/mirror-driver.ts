import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { PublishedRelease, PublishOptions, SimOrigin } from '../../../local/sim-origin/sim-origin.ts';
import type { PollReport } from '../../../shared/mirror/poller.ts';
import { parseRuntimeEnv } from '../../../shared/runtime-env.ts';
import type { Deployment } from './deployment.ts';
import {
  drainQueue,
  type SqsEventSource,
  type SqsInvocation,
  scheduledEvent,
  sqsEventSource,
} from './event-sources.ts';
import { subscribeQueue, type TopicSubscriber } from './subscriber.ts';

/**
 * The mirror side of a deployment, driven as AWS drives it: EventBridge invokes the poller, the event
 * source mapping feeds the worker from the jobs queue, and an SQS subscriber listens on the events topic.
 * Reads go to the mirror bucket, as a consumer of the mirror would.
 */
export class MirrorDriver {
  private constructor(
    readonly deployment: Deployment,
    readonly origin: SimOrigin,
    readonly jobs: SqsEventSource,
    readonly subscriber: TopicSubscriber,
    readonly mirrorBucket: string,
    readonly channel: string,
    readonly board: string,
  ) {}

  static async create(deployment: Deployment, origin: SimOrigin): Promise<MirrorDriver> {
    const { config } = parseRuntimeEnv(deployment.templateEnvironment(deployment.function('Poller')));
    const [source] = config.sources;
    const channel = source?.channels[0];
    const board = channel?.boards[0];
    if (channel === undefined || board === undefined) throw new Error('the deployed config has no channel');
    return new MirrorDriver(
      deployment,
      origin,
      sqsEventSource(deployment, 'Worker'),
      await subscribeQueue(deployment.clients, deployment.ref('Events/Topic')),
      deployment.ref('MirrorBucket'),
      channel.name,
      board,
    );
  }

  /** One scheduled run of the poller. */
  poll(): Promise<PollReport> {
    return this.deployment.invoke<PollReport>('Poller', scheduledEvent(this.deployment, 'Poller'));
  }

  /** The worker takes every job on the queue, failed ones again after their visibility ends. */
  async drain(): Promise<SqsInvocation[]> {
    return (await drainQueue(this.jobs)).invocations;
  }

  publish(
    version: string,
    artifacts: PublishOptions['artifacts'],
    options: Partial<PublishOptions> = {},
  ): Promise<PublishedRelease> {
    return this.origin.publishRelease({
      channel: this.channel,
      board: this.board,
      version,
      artifacts,
      ...options,
    });
  }

  /** `{channel}/{board}/{rest}`, the mirror's layout (the upstream's). */
  key(rest: string): string {
    return `${this.channel}/${this.board}/${rest}`;
  }

  async object(key: string): Promise<Buffer | undefined> {
    try {
      const got = await this.deployment.clients.s3.send(
        new GetObjectCommand({ Bucket: this.mirrorBucket, Key: key }),
      );
      return Buffer.from((await got.Body?.transformToByteArray()) ?? []);
    } catch (error) {
      if ((error as Error).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async keysUnder(prefix: string): Promise<string[]> {
    const listed = await this.deployment.clients.s3.send(
      new ListObjectsV2Command({ Bucket: this.mirrorBucket, Prefix: prefix }),
    );
    return (listed.Contents ?? []).map((entry) => entry.Key ?? '').sort();
  }

  /** The version the mirror's `current/version.txt` names, if any. */
  async mirroredVersion(): Promise<string | undefined> {
    const text = (await this.object(this.key('current/version.txt')))?.toString('utf8');
    return text === undefined ? undefined : /^[A-Z]+_VERSION_ID=(.+)$/m.exec(text)?.[1];
  }

  /** The operator's step of a key rotation: upload armored keys to the trust object the stack names. */
  async uploadTrust(armored: string): Promise<string> {
    const { config, resources } = parseRuntimeEnv(
      this.deployment.templateEnvironment(this.deployment.function('Poller')),
    );
    const prefix = config.store.kind === 's3' ? config.store.prefix : '';
    const key = `${prefix}${resources.trustKeyringKey ?? ''}`;
    await this.deployment.clients.s3.send(
      new PutObjectCommand({ Bucket: this.mirrorBucket, Key: key, Body: armored }),
    );
    return key;
  }
}
