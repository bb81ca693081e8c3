import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError } from '../errors.ts';
import type { CldistEvent } from '../messages.ts';
import type { DrainableNotifier } from './types.ts';

/** Why a webhook delivery was abandoned; given to `onGiveUp` once per URL and event. */
export interface WebhookGiveUp {
  url: string;
  event: CldistEvent;
  attempts: number;
  reason: string;
  /** The last HTTP status, when there was an answer at all. */
  status?: number;
}

export interface WebhookOptions {
  /** Tries per URL and event, the first included. Default 5. */
  attempts?: number;
  /** First retry delay; doubled each time, with jitter. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap on one retry delay. Default 30 s. */
  maxDelayMs?: number;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
  /** Deliveries waiting or in progress beyond this are given up at once. Default 1000. */
  maxPending?: number;
  fetchImpl?: typeof fetch;
  onGiveUp?: (failure: WebhookGiveUp) => void;
  /** Jitter source in [0, 1); injectable so tests are repeatable. */
  random?: () => number;
}

/** URLs may carry secrets in their query; logs show only origin and path. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

function logGiveUp(failure: WebhookGiveUp): void {
  process.stderr.write(
    `${JSON.stringify({
      level: 'WARN',
      message: 'webhook delivery given up',
      url: redactUrl(failure.url),
      event: failure.event.event,
      source: failure.event.source,
      channel: failure.event.channel,
      board: failure.event.board,
      attempts: failure.attempts,
      reason: failure.reason,
      status: failure.status,
    })}\n`,
  );
}

/** 5xx, 408 and 429 may pass; any other 4xx means the receiver refuses this body, so retrying is noise. */
function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** The options with their defaults, checked once. */
interface WebhookSettings {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
  maxPending: number;
  fetchImpl: typeof fetch;
  random: () => number;
  giveUp: (failure: WebhookGiveUp) => void;
}

function webhookSettings(urls: string[], options: WebhookOptions): WebhookSettings {
  for (const url of urls) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new ConfigError(`webhook URL ${JSON.stringify(url)} is not a URL`);
    }
    if (protocol !== 'https:' && protocol !== 'http:') {
      throw new ConfigError(`webhook URL ${JSON.stringify(url)} must be http or https`);
    }
  }
  const attempts = options.attempts ?? 5;
  if (!Number.isSafeInteger(attempts) || attempts < 1) {
    throw new ConfigError(`webhook attempts must be a positive integer, not ${attempts}`);
  }
  const onGiveUp = options.onGiveUp ?? logGiveUp;
  return {
    attempts,
    baseDelayMs: options.baseDelayMs ?? 500,
    maxDelayMs: options.maxDelayMs ?? 30_000,
    timeoutMs: options.timeoutMs ?? 10_000,
    maxPending: options.maxPending ?? 1000,
    fetchImpl: options.fetchImpl ?? fetch,
    random: options.random ?? Math.random,
    giveUp(failure) {
      try {
        onGiveUp(failure);
      } catch {
        // A failing logger must not turn into an unhandled rejection in the background.
      }
    },
  };
}

/** One event to one URL, retried with exponential backoff and jitter; ends delivered or given up. */
async function deliver(
  settings: WebhookSettings,
  url: string,
  event: CldistEvent,
  body: string,
): Promise<void> {
  const { attempts, giveUp } = settings;
  let lastReason = '';
  let lastStatus: number | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      const ceiling = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 2));
      await delay(ceiling / 2 + (settings.random() * ceiling) / 2);
    }
    try {
      const response = await settings.fetchImpl(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'cldist',
          'x-cldist-event': event.event,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return;
      lastStatus = response.status;
      lastReason = `HTTP ${response.status}`;
      if (!isRetryableStatus(response.status)) {
        giveUp({ url, event, attempts: attempt, reason: `${lastReason}, not retried`, status: lastStatus });
        return;
      }
    } catch (error) {
      lastStatus = undefined;
      lastReason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
  }
  giveUp({
    url,
    event,
    attempts,
    reason: lastReason,
    ...(lastStatus === undefined ? {} : { status: lastStatus }),
  });
}

/**
 * POSTs each event as JSON to every URL in the background. A slow or dead receiver must never hold up the
 * mirror pipeline, so `publish` returns once the deliveries are queued and never throws for a delivery;
 * failures end in `onGiveUp` after retries with exponential backoff and jitter.
 */
export function createWebhookNotifier(urls: string[], options: WebhookOptions = {}): DrainableNotifier {
  const settings = webhookSettings(urls, options);
  const { maxPending, giveUp } = settings;
  const pending = new Set<Promise<void>>();
  return {
    async publish(event) {
      const body = JSON.stringify(event);
      for (const url of urls) {
        if (pending.size >= maxPending) {
          giveUp({ url, event, attempts: 0, reason: `more than ${maxPending} deliveries pending` });
          continue;
        }
        const delivery: Promise<void> = deliver(settings, url, event, body).finally(() =>
          pending.delete(delivery),
        );
        pending.add(delivery);
      }
    },
    async drain() {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
