import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { projectRoot } from '../../shared/config.ts';
import { describeError, TransientError } from '../../shared/errors.ts';
import { type ImportSettings, prepareImport, shellQuote, UnusableEventError } from './importer.ts';

interface Options {
  mirrorUrl: string;
  sqsQueueUrl?: string;
  sqsEndpoint?: string;
  region?: string;
  webhook?: string;
  waitSeconds: number;
  once?: boolean;
  execute?: boolean;
  workDir: string;
  artifact: string;
  imageName: string;
  cldist?: string;
  keyring: string[];
  trust: string[];
}

/** 0 imported (or printed), 1 refused or failed (retry may help, or an operator must look), 2 unusable input. */
type Outcome = 0 | 1 | 2;

function log(level: 'INFO' | 'WARN' | 'ERROR', event: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, event, ...fields })}\n`);
}

function httpUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // Reported below.
  }
  throw new InvalidArgumentError('expected an http(s) URL');
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function settingsOf(options: Options): ImportSettings {
  return {
    mirrorUrl: options.mirrorUrl,
    artifact: options.artifact,
    cldist:
      options.cldist === undefined
        ? [process.execPath, join(projectRoot, 'bin/cldist.js')]
        : [options.cldist],
    verifyArgs: [
      ...options.keyring.flatMap((file) => ['--keyring', file]),
      ...options.trust.flatMap((fingerprint) => ['--trust', fingerprint]),
    ],
    workDir: options.workDir,
    imageName: options.imageName,
  };
}

function runOpenstack(command: string[]): Promise<boolean> {
  const [program = 'openstack', ...args] = command;
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (error) => {
      log('ERROR', 'import.openstack_failed', { error: error.message });
      resolve(false);
    });
    child.once('close', (code) => resolve(code === 0));
  });
}

/** Handles one message body end to end; never throws, so every source maps the outcome the same way. */
async function handle(body: string, options: Options): Promise<Outcome> {
  let command: string[];
  try {
    command = await prepareImport(body, settingsOf(options));
  } catch (error) {
    const outcome: Outcome = error instanceof UnusableEventError ? 2 : 1;
    log(outcome === 2 ? 'WARN' : 'ERROR', outcome === 2 ? 'import.unusable_event' : 'import.failed', {
      error: describeError(error),
      retryable: error instanceof TransientError,
    });
    return outcome;
  }
  process.stdout.write(`${shellQuote(command)}\n`);
  if (!options.execute) {
    log('INFO', 'import.printed', { image: command.at(-1) });
    return 0;
  }
  const ok = await runOpenstack(command);
  log(ok ? 'INFO' : 'ERROR', ok ? 'import.done' : 'import.openstack_failed', { image: command.at(-1) });
  return ok ? 0 : 1;
}

/**
 * Long-polls the queue. A message is deleted when it was imported or can never be (malformed, wrong event);
 * one that failed otherwise stays, comes back after its visibility timeout and ends in the queue's DLQ.
 */
async function fromSqs(options: Options, queueUrl: string): Promise<Outcome> {
  const sqs = new SQSClient({
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.sqsEndpoint === undefined
      ? {}
      : {
          endpoint: options.sqsEndpoint,
          region: options.region ?? 'us-east-1',
          credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        }),
  });
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: options.waitSeconds,
      }),
    );
    for (const message of received.Messages ?? []) {
      const outcome = await handle(message.Body ?? '', options);
      if (outcome !== 1) {
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
      }
      if (options.once) return outcome;
    }
  }
}

async function readBody(request: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error(`body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Answers each POST after handling it: 200 imported, 400 unusable (cldist's webhook notifier does not retry
 * a 4xx), 422 refused by verify, 503 when a retry may help.
 */
function fromWebhook(options: Options, listen: string): Promise<Outcome> {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at);
  const port = Number(listen.slice(at + 1));
  return new Promise((resolve, reject) => {
    const server = createServer((request, response) => {
      void (async () => {
        let outcome: Outcome = 2;
        if (request.method !== 'POST') {
          response.writeHead(405, { Allow: 'POST' }).end();
          return;
        }
        try {
          outcome = await handle(await readBody(request), options);
        } catch (error) {
          log('WARN', 'import.unusable_event', { error: describeError(error) });
        }
        response.writeHead(outcome === 0 ? 200 : outcome === 2 ? 400 : 422).end();
        if (options.once) server.close(() => resolve(outcome));
      })();
    });
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo;
      log('INFO', 'webhook.listening', { url: `http://${host}:${address.port}/` });
    });
  });
}

const program = new Command('import-openstack')
  .description(
    'Import each new Flatcar release into OpenStack Glance: take release.mirrored from SQS or a webhook, ' +
      'download the OpenStack image and its .sig from the mirror, check them with cldist verify, and print ' +
      'the openstack image create command (run it with --execute).',
  )
  .requiredOption(
    '--mirror-url <url>',
    'the mirror root, e.g. the MirrorUrl output or http://HOST:8080/mirror',
    httpUrl,
  )
  .option('--sqs-queue-url <url>', 'take events from this SQS queue (subscribed to the events topic)')
  .option('--sqs-endpoint <url>', 'a non-AWS SQS endpoint, e.g. the single-machine runner', httpUrl)
  .option('--region <region>', 'AWS region of the queue (default: the SDK chain)')
  .option('--webhook <host:port>', 'listen for cldist webhook POSTs here instead of SQS')
  .option('--wait-seconds <n>', 'SQS long-poll wait', (v) => Number.parseInt(v, 10), 20)
  .option('--once', 'handle one message, then exit with its outcome')
  .option('--execute', 'run the openstack command instead of only printing it')
  .option('--work-dir <dir>', 'where images are downloaded', join(tmpdir(), 'cldist-import-openstack'))
  .option('--artifact <name>', 'the artifact to import', 'flatcar_production_openstack_image.img.bz2')
  .option(
    '--image-name <template>',
    'Glance image name',
    'Flatcar Container Linux {channel} {version} ({board})',
  )
  .option('--cldist <path>', 'the cldist command (default: this repository’s bin/cldist.js)')
  .option('--keyring <file>', 'passed to cldist verify; repeatable (default: the bundled keys)', collect, [])
  .option('--trust <fingerprint>', 'passed to cldist verify; repeatable', collect, [])
  .exitOverride()
  .action(async (options: Options) => {
    if ((options.sqsQueueUrl === undefined) === (options.webhook === undefined)) {
      program.error('error: give exactly one of --sqs-queue-url and --webhook', { exitCode: 2 });
    }
    process.exitCode =
      options.sqsQueueUrl !== undefined
        ? await fromSqs(options, options.sqsQueueUrl)
        : await fromWebhook(options, options.webhook ?? '');
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    log('ERROR', 'import.stopped', { error: describeError(error) });
    process.exitCode = 1;
  }
}
