import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PublishCommand, SNSClient, SNSServiceException, SubscribeCommand } from '@aws-sdk/client-sns';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, PermanentError, TransientError } from '../../shared/errors.ts';
import type { CldistEvent } from '../../shared/messages.ts';
import {
  combineNotifiers,
  createConsoleNotifier,
  createMemoryNotifier,
  createSnsNotifier,
  createWebhookNotifier,
  type Notifier,
  redactUrl,
  type WebhookGiveUp,
} from '../../shared/notify/index.ts';
import { emulatorClients, freshQueue, freshTopic } from '../support/emulators.ts';

const clients = emulatorClients();

function event(name: CldistEvent['event'], overrides: Partial<CldistEvent> = {}): CldistEvent {
  return {
    event: name,
    source: 'flatcar',
    channel: 'stable',
    board: 'amd64-usr',
    version: '3510.2.8',
    at: '2026-11-26T10:00:00.000Z',
    detail: { artifacts: 4 },
    ...overrides,
  };
}

function snsError(name: string, status: number): SNSServiceException {
  return new SNSServiceException({ name, $fault: 'server', $metadata: { httpStatusCode: status } });
}

describe('SNS notifier on fauxqs', () => {
  it('publishes JSON with event, source, channel and board attributes that a filter policy can select on', async () => {
    const topicArn = await freshTopic(clients);
    const queue = await freshQueue(clients);
    await clients.sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: {
          RawMessageDelivery: 'true',
          FilterPolicy: JSON.stringify({ event: ['release.mirrored'] }),
        },
      }),
    );
    const notifier = createSnsNotifier(clients.sns, topicArn);
    const mirrored = event('release.mirrored', { channel: 'beta', board: 'arm64-usr' });

    await notifier.publish(event('artifact.missing', { artifact: 'flatcar_production_pxe.vmlinuz' }));
    await notifier.publish(mirrored);

    const received = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 5,
        MessageAttributeNames: ['All'],
      }),
    );
    expect(received.Messages).toHaveLength(1);
    const [message] = received.Messages ?? [];
    expect(JSON.parse(message?.Body ?? '')).toEqual(mirrored);
    expect(message?.MessageAttributes).toEqual({
      event: { DataType: 'String', StringValue: 'release.mirrored' },
      source: { DataType: 'String', StringValue: 'flatcar' },
      channel: { DataType: 'String', StringValue: 'beta' },
      board: { DataType: 'String', StringValue: 'arm64-usr' },
    });
  });

  it('refuses a topic that does not exist as a permanent failure', async () => {
    const notifier = createSnsNotifier(clients.sns, 'arn:aws:sns:us-east-1:000000000000:cldist-absent');
    await expect(notifier.publish(event('release.mirrored'))).rejects.toMatchObject({
      name: 'PermanentError',
      code: 'notify-rejected',
    });
  });

  it('reports an unreachable endpoint as transient', async () => {
    const sns = new SNSClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    const notifier = createSnsNotifier(sns, 'arn:aws:sns:us-east-1:000000000000:cldist-events');
    await expect(notifier.publish(event('release.mirrored'))).rejects.toBeInstanceOf(TransientError);
  });

  it.each([
    ['Throttled', 400, TransientError],
    ['InternalError', 500, TransientError],
    ['AuthorizationError', 403, PermanentError],
    ['InvalidParameter', 400, PermanentError],
  ])('maps %s (%i), a fault the emulator never raises, to %o', async (name, status, expected) => {
    const sns = new SNSClient({ region: 'us-east-1' });
    const mock = mockClient(sns);
    mock.on(PublishCommand).rejects(snsError(name, status));
    const notifier = createSnsNotifier(sns, 'arn:aws:sns:us-east-1:000000000000:cldist-events');
    await expect(notifier.publish(event('release.mirrored'))).rejects.toBeInstanceOf(expected);
    mock.restore();
  });
});

interface Received {
  method: string;
  contentType: string | undefined;
  eventHeader: string | undefined;
  body: string;
}

describe('webhook notifier', () => {
  let server: Server;
  let baseUrl: string;
  let received: Received[];
  let answer: (request: Received, count: number) => Promise<number> | number;

  beforeEach(async () => {
    received = [];
    answer = () => 200;
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', async () => {
        const entry: Received = {
          method: request.method ?? '',
          contentType: request.headers['content-type'],
          eventHeader: request.headers['x-cldist-event'] as string | undefined,
          body: Buffer.concat(chunks).toString(),
        };
        received.push(entry);
        response.statusCode = await answer(entry, received.length);
        response.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('retries 5xx with backoff and delivers the JSON body once', async () => {
    answer = (_request, count) => (count <= 2 ? 500 : 200);
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([`${baseUrl}/hook`], {
      baseDelayMs: 2,
      onGiveUp: (failure) => giveUps.push(failure),
    });
    const mirrored = event('release.mirrored');

    await notifier.publish(mirrored);
    await notifier.drain();

    expect(received).toHaveLength(3);
    for (const request of received) {
      expect(request).toMatchObject({
        method: 'POST',
        contentType: 'application/json',
        eventHeader: 'release.mirrored',
      });
      expect(JSON.parse(request.body)).toEqual(mirrored);
    }
    expect(giveUps).toEqual([]);
  });

  it('does not retry a 4xx, and reports the give-up', async () => {
    answer = () => 400;
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([`${baseUrl}/hook`], {
      baseDelayMs: 2,
      onGiveUp: (failure) => giveUps.push(failure),
    });

    await notifier.publish(event('artifact.verification_failed'));
    await notifier.drain();

    expect(received).toHaveLength(1);
    expect(giveUps).toHaveLength(1);
    expect(giveUps[0]).toMatchObject({ url: `${baseUrl}/hook`, attempts: 1, status: 400 });
    expect(giveUps[0]?.event.event).toBe('artifact.verification_failed');
  });

  it('does not follow redirects, and does not retry them', async () => {
    answer = () => 302;
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([baseUrl], { baseDelayMs: 2, onGiveUp: (f) => giveUps.push(f) });
    await notifier.publish(event('release.mirrored'));
    await notifier.drain();
    expect(received).toHaveLength(1);
    expect(giveUps).toEqual([expect.objectContaining({ attempts: 1, status: 302 })]);
  });

  it('retries 429 like a 5xx', async () => {
    answer = (_request, count) => (count === 1 ? 429 : 204);
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([baseUrl], { baseDelayMs: 2, onGiveUp: (f) => giveUps.push(f) });
    await notifier.publish(event('release.mirrored'));
    await notifier.drain();
    expect(received).toHaveLength(2);
    expect(giveUps).toEqual([]);
  });

  it('gives up after the last attempt on a receiver that keeps failing', async () => {
    answer = () => 503;
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([baseUrl], {
      attempts: 3,
      baseDelayMs: 2,
      onGiveUp: (f) => giveUps.push(f),
    });
    await notifier.publish(event('release.mirrored'));
    await notifier.drain();
    expect(received).toHaveLength(3);
    expect(giveUps).toEqual([expect.objectContaining({ attempts: 3, status: 503, reason: 'HTTP 503' })]);
  });

  it('gives up on an unreachable receiver without throwing to the publisher', async () => {
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier(['http://127.0.0.1:9/hook'], {
      attempts: 2,
      baseDelayMs: 2,
      onGiveUp: (f) => giveUps.push(f),
    });
    await expect(notifier.publish(event('release.mirrored'))).resolves.toBeUndefined();
    await notifier.drain();
    expect(giveUps).toHaveLength(1);
    expect(giveUps[0]).toMatchObject({ attempts: 2 });
    expect(giveUps[0]?.status).toBeUndefined();
  });

  it('returns from publish before the receiver has answered', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    answer = async () => {
      await held;
      return 200;
    };
    const notifier = createWebhookNotifier([baseUrl], { baseDelayMs: 2 });

    await notifier.publish(event('release.mirrored'));
    release();
    await notifier.drain();

    expect(received).toHaveLength(1);
  });

  it('delivers to every URL even when one of them fails', async () => {
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier(['http://127.0.0.1:9/dead', `${baseUrl}/a`, `${baseUrl}/b`], {
      attempts: 2,
      baseDelayMs: 2,
      onGiveUp: (f) => giveUps.push(f),
    });
    await notifier.publish(event('release.mirrored'));
    await notifier.publish(event('signing_key.expiring'));
    await notifier.drain();
    expect(received.map((r) => JSON.parse(r.body).event).sort()).toEqual([
      'release.mirrored',
      'release.mirrored',
      'signing_key.expiring',
      'signing_key.expiring',
    ]);
    expect(giveUps.map((f) => f.url)).toEqual(['http://127.0.0.1:9/dead', 'http://127.0.0.1:9/dead']);
  });

  it('gives up at once on deliveries beyond maxPending instead of growing without bound', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    answer = async () => {
      await held;
      return 200;
    };
    const giveUps: WebhookGiveUp[] = [];
    const notifier = createWebhookNotifier([baseUrl], { maxPending: 1, onGiveUp: (f) => giveUps.push(f) });

    await notifier.publish(event('release.mirrored'));
    await notifier.publish(event('artifact.missing'));
    expect(giveUps).toEqual([
      expect.objectContaining({ attempts: 0, reason: 'more than 1 deliveries pending' }),
    ]);
    expect(giveUps[0]?.event.event).toBe('artifact.missing');
    release();
    await notifier.drain();
    expect(received.map((r) => JSON.parse(r.body).event)).toEqual(['release.mirrored']);
  });

  it('refuses URLs that are not http(s) when built', () => {
    expect(() => createWebhookNotifier(['file:///etc/passwd'])).toThrow(ConfigError);
    expect(() => createWebhookNotifier(['not a url'])).toThrow(/not a URL/);
    expect(() => createWebhookNotifier([baseUrl], { attempts: 0 })).toThrow(ConfigError);
  });

  it('keeps secrets in webhook URLs out of logs', () => {
    expect(redactUrl('https://hooks.example.com/services/T1?token=secret')).toBe(
      'https://hooks.example.com/services/T1',
    );
  });
});

describe('memory, console and combined notifiers', () => {
  it('keeps the most recent events, newest first, up to its limit', async () => {
    const memory = createMemoryNotifier(3);
    for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0', '5.0.0']) {
      await memory.publish(event('release.mirrored', { version }));
    }
    expect(memory.recent().map((e) => e.version)).toEqual(['5.0.0', '4.0.0', '3.0.0']);
    expect(() => createMemoryNotifier(0)).toThrow(ConfigError);
  });

  it('writes one JSON line per event', async () => {
    const lines: string[] = [];
    const consoleNotifier = createConsoleNotifier((line) => lines.push(line));
    const expiring = event('signing_key.expiring', { detail: { fingerprint: 'ABC', expires: '2027-03-08' } });
    await consoleNotifier.publish(expiring);
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      level: 'INFO',
      message: 'cldist event signing_key.expiring',
      timestamp: expiring.at,
      ...expiring,
    });
  });

  it('gives every notifier the event even when one fails, and fails transiently if any failure was', async () => {
    const memory = createMemoryNotifier();
    const denied: Notifier = {
      publish: async () => {
        throw new PermanentError('notify-rejected', 'denied');
      },
    };
    const throttled: Notifier = {
      publish: async () => {
        throw new TransientError('notify-unavailable', 'throttled');
      },
    };
    const combined = combineNotifiers(denied, memory, throttled);

    await expect(combined.publish(event('artifact.missing'))).rejects.toBeInstanceOf(TransientError);
    await expect(combineNotifiers(denied, memory).publish(event('artifact.missing'))).rejects.toMatchObject({
      code: 'notify-rejected',
    });
    expect(memory.recent()).toHaveLength(2);
  });
});

describe('combined webhook notifier', () => {
  it('drains its webhook members', async () => {
    let requests = 0;
    const server = createServer((_request, response) => {
      requests++;
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const combined = combineNotifiers(createMemoryNotifier(), createWebhookNotifier([url]));
    await combined.publish(event('release.mirrored'));
    await combined.drain();
    expect(requests).toBe(1);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
