import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Where Lambda unpacks a function's code; the bundle's config names its key files under it. */
export const lambdaTaskRoot = '/var/task';

const runtimeScript = fileURLToPath(new URL('./lambda-runtime.mjs', import.meta.url));

/**
 * Environment variables a bundle may read while they are unset without that being a mistake: those the
 * Lambda runtime, the AWS SDK, Powertools, Node and the bundled libraries define as optional settings.
 * Any other unset read (a `CLDIST_*` name above all) means the code expects something the template does
 * not set. A dependency that starts reading a new optional variable fails the deploy tests, naming it;
 * add it here with the reason.
 */
const optionalEnvironment = [
  /^AWS_/,
  /^_X_AMZN_/,
  /^POWERTOOLS_/,
  /^NODE_/,
  /^LAMBDA_/,
  /^_HANDLER$/,
  // The SDK's shared config loader looks for a home directory (Lambda sets none).
  /^(HOME|USERPROFILE|HOMEPATH|HOMEDRIVE)$/,
  // Node's own --watch support checks it when a module is loaded.
  /^WATCH_REPORT_DEPENDENCIES$/,
  // Powertools Logger's fallbacks for the log level and the environment field.
  /^(LOG_LEVEL|ENVIRONMENT)$/,
  // Colour and test-runner detection in bundled libraries; undici's own switches.
  /^(FORCE_COLOR|NO_COLOR|TERM|CI|JEST_WORKER_ID|VITEST)$/,
  /^UNDICI_/,
  // @bufbuild/protobuf's switch for 64-bit fields as strings, where BigInt is missing (the CrAU reader).
  /^BUF_BIGINT_DISABLE$/,
];

export interface ContainerSpec {
  /** Names the function in every message: the construct path, e.g. `Cldist/Worker`. */
  name: string;
  handler: string;
  assetDir: string;
  /** Exactly what the function gets: the template's variables plus the platform's. */
  environment: Record<string, string>;
  timeoutSeconds: number;
  memoryMiB: number;
  functionArn: string;
}

export interface InvokeError {
  errorType: string;
  errorMessage?: string;
  stack?: string;
  causes?: string[];
}

interface InitMessage {
  type: 'init';
  ok: boolean;
  error?: InvokeError;
  unsetEnv: string[];
}

interface ResultMessage {
  type: 'result';
  id: string;
  ok: boolean;
  value?: unknown;
  error?: InvokeError;
  unsetEnv: string[];
}

interface CrashMessage {
  type: 'crash';
  error: InvokeError;
  unsetEnv: string[];
}

type RuntimeMessage = InitMessage | ResultMessage | CrashMessage;

/** A function whose bundle did not load, or that read a variable the template does not set. */
export class FunctionContractError extends Error {
  override name = 'FunctionContractError';
}

/** The handler threw (Lambda reports a function error; the event source decides what happens next). */
export class FunctionError extends Error {
  override name = 'FunctionError';
  constructor(
    readonly functionName: string,
    readonly error: InvokeError,
  ) {
    super(`function ${functionName} failed: ${error.errorType}: ${error.errorMessage ?? ''}`);
  }
}

function formatError(error: InvokeError | undefined): string {
  if (error === undefined) return 'unknown error';
  const causes = (error.causes ?? []).map((cause) => `\n  caused by ${cause}`).join('');
  return `${error.errorType}: ${error.errorMessage ?? ''}${causes}`;
}

/** A bounded tail of what the function printed, shown when something goes wrong. */
class LogTail {
  private text = '';
  constructor(private readonly limit = 20_000) {}
  add(chunk: Buffer): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

/**
 * The command that starts the runtime with the asset mounted read-only at /var/task, as Lambda runs it,
 * in a private mount namespace so nothing on the host changes. /var is replaced by an empty tmpfs there
 * (only /var/task exists on Lambda's /var that the code may rely on). Without root, a user namespace maps
 * the caller to root for the mount.
 */
function namespacedCommand(assetDir: string): { command: string; args: string[] } {
  const root = process.getuid?.() === 0;
  const mount = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin mount';
  // In a user namespace the bind mount keeps the source's locked flags and a read-only remount may be
  // refused; there the asset stays writable, which only weakens a check Lambda makes.
  const readOnly = root
    ? `${mount} -o remount,bind,ro /var/task`
    : `{ ${mount} -o remount,bind,ro /var/task || true; }`;
  const mountScript = [
    `${mount} -t tmpfs -o size=1m,mode=0755 tmpfs /var`,
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin mkdir /var/task',
    `${mount} --bind "$1" /var/task`,
    readOnly,
    'shift',
    'exec "$@"',
  ].join(' && ');
  return {
    command: 'unshare',
    args: [
      ...(root ? [] : ['--map-root-user']),
      '--mount',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      mountScript,
      'sh',
      assetDir,
      process.execPath,
      runtimeScript,
    ],
  };
}

/**
 * One warm Lambda container: a long-lived process holding one function's bundle, taking one event at a
 * time as Lambda does. Module state (clients, caches, the loaded keyring) survives between invocations,
 * and nothing is shared with the test process or other functions.
 */
export class LambdaContainer {
  private readonly pending = new Map<
    string,
    { resolve: (message: ResultMessage) => void; reject: (error: Error) => void }
  >();
  private readonly unsetReads = new Set<string>();
  private exited = false;
  readonly logs = new LogTail();

  private constructor(
    readonly spec: ContainerSpec,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => this.logs.add(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.logs.add(chunk));
    child.on('message', (message: RuntimeMessage) => this.received(message));
    child.on('exit', (code, signal) => {
      this.exited = true;
      const error = new FunctionContractError(
        `function ${spec.name}: its runtime process exited (${signal ?? `code ${code}`}).\n${this.logs}`,
      );
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  /**
   * Starts the container and waits for the bundle to load (Lambda's init phase). Fails, naming the
   * function, when the module cannot be imported or its cold start throws or reads an unset variable.
   */
  static async start(spec: ContainerSpec, initTimeoutMs = 30_000): Promise<LambdaContainer> {
    const { command, args } = namespacedCommand(spec.assetDir);
    const child = spawn(command, args, {
      env: spec.environment,
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const container = new LambdaContainer(spec, child);
    const init = await container.waitFor<InitMessage>('init', initTimeoutMs);
    if (!init.ok) {
      await container.close();
      throw new FunctionContractError(
        `function ${spec.name} (handler ${spec.handler}) cannot start: ${formatError(init.error)}` +
          `${container.unexpectedReadsNote()}\n--- its output ---\n${container.logs}`,
      );
    }
    container.checkEnvironmentReads();
    return container;
  }

  private initWaiter?: { resolve: (message: InitMessage) => void; reject: (error: Error) => void };

  private waitFor<T extends InitMessage>(_type: 'init', timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new FunctionContractError(
            `function ${this.spec.name}: the bundle did not finish loading within ${timeoutMs} ms.\n${this.logs}`,
          ),
        );
      }, timeoutMs);
      this.initWaiter = {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.child.once('exit', (code) => {
        this.initWaiter?.reject(
          new FunctionContractError(
            `function ${this.spec.name}: the runtime exited (code ${code}) before the bundle loaded. ` +
              `Starting it needs \`unshare --mount\` (root, or unprivileged user namespaces).\n${this.logs}`,
          ),
        );
      });
    });
  }

  private received(message: RuntimeMessage): void {
    for (const name of message.unsetEnv) this.unsetReads.add(name);
    if (message.type === 'init') {
      this.initWaiter?.resolve(message);
      return;
    }
    if (message.type === 'crash') {
      const error = new FunctionContractError(
        `function ${this.spec.name} crashed: ${formatError(message.error)}\n${this.logs}`,
      );
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
      return;
    }
    const waiter = this.pending.get(message.id);
    this.pending.delete(message.id);
    waiter?.resolve(message);
  }

  /** False once the process has exited (a crash, or `close`): Lambda would start a new container. */
  get running(): boolean {
    return !this.exited;
  }

  /** Unset variables read so far that no platform or library defines as optional. */
  unexpectedReads(): string[] {
    return [...this.unsetReads].filter((name) => !optionalEnvironment.some((pattern) => pattern.test(name)));
  }

  private unexpectedReadsNote(): string {
    const names = this.unexpectedReads();
    return names.length === 0 ? '' : `\nit read ${names.join(', ')}, which the template does not set`;
  }

  private checkEnvironmentReads(): void {
    const names = this.unexpectedReads();
    if (names.length > 0) {
      throw new FunctionContractError(
        `function ${this.spec.name} read environment variable${names.length > 1 ? 's' : ''} ` +
          `${names.join(', ')}, which the template does not set`,
      );
    }
  }

  /**
   * Invokes the handler with one event and returns what Lambda would return to the caller. A handler
   * error rejects with FunctionError; a read of an unset variable, a crash or a timeout with
   * FunctionContractError, all naming the function.
   */
  async invoke<T = unknown>(event: unknown, timeoutMs?: number): Promise<T> {
    if (this.exited) throw new FunctionContractError(`function ${this.spec.name} is not running`);
    const id = randomUUID();
    const limit = timeoutMs ?? Math.min(this.spec.timeoutSeconds * 1000, 30_000);
    const result = await new Promise<ResultMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new FunctionContractError(
            `function ${this.spec.name} did not answer within ${limit} ms.\n${this.logs}`,
          ),
        );
      }, limit);
      this.pending.set(id, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({
        type: 'invoke',
        id,
        event,
        context: {
          timeoutMs: this.spec.timeoutSeconds * 1000,
          functionName: this.spec.environment.AWS_LAMBDA_FUNCTION_NAME ?? this.spec.name,
          invokedFunctionArn: this.spec.functionArn,
          memoryMiB: this.spec.memoryMiB,
          requestId: id,
          logGroupName: this.spec.environment.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
          logStreamName: this.spec.environment.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
        },
      });
    });
    this.checkEnvironmentReads();
    if (!result.ok) throw new FunctionError(this.spec.name, result.error ?? { errorType: 'unknown' });
    return result.value as T;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    await exited;
  }
}
