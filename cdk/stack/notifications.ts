import type { Stack } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { EncryptedTopic } from '../constructs/encrypted-topic.ts';
import type { DeploySettings, SubscriptionSetting } from '../settings.ts';

const subscriptionProtocols: Record<SubscriptionSetting['protocol'], sns.SubscriptionProtocol> = {
  email: sns.SubscriptionProtocol.EMAIL,
  https: sns.SubscriptionProtocol.HTTPS,
  sqs: sns.SubscriptionProtocol.SQS,
};

function filterPolicy(setting: SubscriptionSetting): Record<string, sns.SubscriptionFilter> | undefined {
  const filter = setting.filter;
  if (filter === undefined) {
    return undefined;
  }
  const policy: Record<string, sns.SubscriptionFilter> = {};
  for (const [attribute, allowlist] of Object.entries(filter)) {
    if (allowlist !== undefined) {
      policy[attribute] = sns.SubscriptionFilter.stringFilter({ allowlist });
    }
  }
  return policy;
}

export interface Topics {
  /** Release and alert events for subscribers (`deploy.subscriptions`). */
  events: EncryptedTopic;
  /** CloudWatch alarms, for the operator (`deploy.alarms.email`). */
  operator: EncryptedTopic;
}

/**
 * Two topics because their readers differ: subscribers filter product events by attribute, while alarms
 * go to whoever runs the deployment, and only CloudWatch may publish there.
 */
export function buildTopics(stack: Stack, deploy: DeploySettings): Topics {
  const events = new EncryptedTopic(stack, 'Events', {
    description: 'cldist release and alert events',
  });
  for (const [index, setting] of deploy.subscriptions.entries()) {
    const policy = filterPolicy(setting);
    new sns.Subscription(stack, `Subscription${index}`, {
      topic: events.topic,
      protocol: subscriptionProtocols[setting.protocol],
      endpoint: setting.endpoint,
      rawMessageDelivery: setting.protocol === 'sqs' ? setting.rawMessageDelivery : undefined,
      filterPolicy: policy,
    });
  }
  const operator = new EncryptedTopic(stack, 'Operator', {
    description: 'cldist operator alarms',
    publishingServices: ['cloudwatch.amazonaws.com'],
  });
  if (deploy.alarms.email !== undefined) {
    operator.topic.addSubscription(new subscriptions.EmailSubscription(deploy.alarms.email));
  }
  return { events, operator };
}
