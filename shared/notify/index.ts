export { combineNotifiers } from './combine.ts';
export { createConsoleNotifier } from './console-notifier.ts';
export { createMemoryNotifier, type MemoryNotifier } from './memory-notifier.ts';
export { createSnsNotifier, mapSnsError } from './sns-notifier.ts';
export type { DrainableNotifier, Notifier } from './types.ts';
export {
  createWebhookNotifier,
  redactUrl,
  type WebhookGiveUp,
  type WebhookOptions,
} from './webhook-notifier.ts';
