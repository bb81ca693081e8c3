import type { AwsClients } from '../../../shared/aws-clients.ts';
import { LambdaContainer } from './lambda-container.ts';
import { type StandIns, standUp } from './stand-ins.ts';
import {
  type CfnTemplate,
  readTemplate,
  resolveString,
  type SynthesizedAssembly,
  type TemplateFunction,
  templateFunctions,
} from './template.ts';

export const region = 'us-east-1';

/** Where the stand-ins listen; each function gets these as its service endpoints. */
export interface Endpoints {
  fauxqs: string;
  dynamodb: string;
  secretsManager: string;
}

export interface DeploymentOptions {
  assembly: SynthesizedAssembly;
  endpoints: Endpoints;
  clients: AwsClients;
  stackName: string;
  /** Changes a copy of the template before anything is stood up, e.g. to break it on purpose. */
  editTemplate?: (template: CfnTemplate) => void;
}

/**
 * The settings every function gets besides its own variables: the stand-ins' endpoints, dummy credentials
 * and the checksum mode fauxqs needs, plus the reserved variables the Lambda runtime itself sets.
 */
function platformEnvironment(fn: TemplateFunction, endpoints: Endpoints): Record<string, string> {
  const functionName = fn.logicalId;
  return {
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_S3: endpoints.fauxqs,
    AWS_ENDPOINT_URL_SQS: endpoints.fauxqs,
    AWS_ENDPOINT_URL_SNS: endpoints.fauxqs,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMiB),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `local/[$LATEST]${functionName}`,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    LAMBDA_TASK_ROOT: '/var/task',
    _HANDLER: fn.handler,
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    PATH: '/usr/local/bin:/usr/bin/:/bin',
  };
}

/**
 * The synthesized stack stood up on fauxqs and dynalite, with its functions run from their bundles. The
 * resources are made from the template; each function is started on first use (a cold start) and kept
 * warm until `close`.
 */
export class Deployment {
  private readonly containers = new Map<string, Promise<LambdaContainer>>();
  private readonly starts = new Map<string, number>();

  private constructor(
    readonly template: CfnTemplate,
    readonly functions: TemplateFunction[],
    readonly standIns: StandIns,
    readonly clients: AwsClients,
    private readonly endpoints: Endpoints,
  ) {}

  static async create(options: DeploymentOptions): Promise<Deployment> {
    const template = readTemplate(options.assembly);
    options.editTemplate?.(template);
    const functions = templateFunctions(template, options.assembly);
    const standIns = await standUp(template, {
      clients: options.clients,
      secretsManagerEndpoint: options.endpoints.secretsManager,
      region,
      stackName: options.stackName,
    });
    return new Deployment(template, functions, standIns, options.clients, options.endpoints);
  }

  /** The function whose construct path ends with `/${id}` (`Worker`) or whose logical ID is `id`. */
  function(id: string): TemplateFunction {
    const found = this.functions.filter((fn) => fn.name.endsWith(`/${id}`) || fn.logicalId === id);
    const [fn] = found;
    if (fn === undefined || found.length > 1) {
      throw new Error(
        `expected one function named ${id}, found ${found.length} among ${this.functions.map((f) => f.name).join(', ')}`,
      );
    }
    return fn;
  }

  /** The template's variables with every intrinsic resolved to the stand-ins' names, ARNs and URLs. */
  templateEnvironment(fn: TemplateFunction): Record<string, string> {
    return Object.fromEntries(
      Object.entries(fn.environment).map(([name, value]) => [
        name,
        resolveString(value, this.standIns.scope, `${fn.name} environment ${name}`),
      ]),
    );
  }

  /** What the function's process sees: the template's variables and the platform's, nothing else. */
  environment(fn: TemplateFunction): Record<string, string> {
    return { ...platformEnvironment(fn, this.endpoints), ...this.templateEnvironment(fn) };
  }

  /** A stood-up resource's `Ref` value, by construct path suffix or logical ID. */
  ref(id: string): string {
    return this.physical(id).ref;
  }

  attribute(id: string, attribute: string): string {
    const value = this.physical(id).attributes[attribute];
    if (value === undefined) throw new Error(`resource ${id} has no attribute ${attribute}`);
    return value;
  }

  /** The logical ID of the one resource whose construct path is `Stack/${path}` or ends with `/${path}`. */
  logicalId(path: string): string {
    const matches = Object.entries(this.template.Resources)
      .filter(([logicalId, resource]) => {
        const cdkPath = resource.Metadata?.['aws:cdk:path'];
        return (
          logicalId === path ||
          (typeof cdkPath === 'string' &&
            (cdkPath.endsWith(`/${path}/Resource`) || cdkPath.endsWith(`/${path}`)))
        );
      })
      .map(([logicalId]) => logicalId);
    const [logicalId] = matches;
    if (logicalId === undefined || matches.length > 1) {
      throw new Error(`expected one resource at ${path}, found ${matches.length}`);
    }
    return logicalId;
  }

  private physical(id: string) {
    const logicalId = this.logicalId(id);
    const physical = this.standIns.physical.get(logicalId);
    if (physical === undefined) throw new Error(`resource ${id} (${logicalId}) was not stood up`);
    return physical;
  }

  /** The warm container of a function, started (cold) on first use and again after its process died. */
  async container(id: string): Promise<LambdaContainer> {
    const fn = this.function(id);
    const cached = this.containers.get(fn.logicalId);
    if (cached !== undefined) {
      const container = await cached;
      if (container.running) return container;
    }
    const started = LambdaContainer.start({
      name: fn.name,
      handler: fn.handler,
      assetDir: fn.assetDir,
      environment: this.environment(fn),
      timeoutSeconds: fn.timeoutSeconds,
      memoryMiB: fn.memoryMiB,
      functionArn: this.attribute(fn.logicalId, 'Arn'),
    });
    this.containers.set(fn.logicalId, started);
    this.starts.set(fn.logicalId, this.coldStarts(id) + 1);
    return started;
  }

  /** How many containers of the function were started: 1 means every event so far found it warm. */
  coldStarts(id: string): number {
    return this.starts.get(this.function(id).logicalId) ?? 0;
  }

  /** Ends the function's warm container, as Lambda does when it recycles one: the next event cold-starts. */
  async recycle(id: string): Promise<void> {
    const logicalId = this.function(id).logicalId;
    const cached = this.containers.get(logicalId);
    this.containers.delete(logicalId);
    await cached?.then((container) => container.close()).catch(() => undefined);
  }

  async invoke<T = unknown>(id: string, event: unknown): Promise<T> {
    return (await this.container(id)).invoke<T>(event);
  }

  async close(): Promise<void> {
    const started = [...this.containers.values()];
    this.containers.clear();
    await Promise.all(
      started.map((promise) => promise.then((container) => container.close()).catch(() => undefined)),
    );
  }
}
