import { CfnOutput, Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as eventbridge from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { type ApiRoute, apiRoutes, instanceRouteKeys, metadataRouteKeys } from '../../shared/api-routes.ts';
import type { CldistConfig } from '../../shared/config.ts';
import { configBodySweepEvent } from '../../shared/instances/body-sweep.ts';
import { serviceNames } from '../../shared/telemetry-names.ts';
import { BootRoutes } from '../constructs/boot-routes.ts';
import { CldistFunction } from '../constructs/node-function.ts';
import { MetadataProxySecret } from '../constructs/proxy-secret.ts';
import { grantBucketKey, grantLedger, grantObjects } from '../grants.ts';
import { acknowledge, acknowledgeObjectWildcard } from '../nag.ts';
import type { DeploySettings } from '../settings.ts';
import type { Storage } from './storage.ts';
import { acknowledgeUpdateRoutes, updateRouteSettings } from './update-routes.ts';

export interface ApiProps {
  config: CldistConfig;
  deploy: DeploySettings;
  storage: Storage;
  logRetention: logs.RetentionDays;
  entry: string;
  projectRoot: string;
  /** The release admin routes send jobs here (retry). */
  jobs: sqs.IQueue;
  /** The mirror's public HTTPS URL (CloudFront), named in Omaha answers; absent, no Omaha endpoint. */
  mirrorPublicUrl?: string;
}

export interface Api {
  httpApi: apigw.HttpApi;
  fn: CldistFunction;
  publicUrl: string;
  stage: apigw.HttpStage;
}

interface RouteGroups {
  instance: apigw.HttpRoute[];
  metadata: apigw.HttpRoute[];
  update: apigw.HttpRoute[];
  admin: apigw.HttpRoute[];
  boot: BootRoutes;
}

/**
 * The HTTP API in front of the API function: one gateway route per app route, IAM on the admin routes,
 * separate throttles on the routes that cannot sign (instances and metadata proxies), access logs, and
 * the daily sweep of config bodies no record points at.
 */
export function buildApi(stack: Stack, props: ApiProps): Api {
  const { config, deploy } = props;
  const proxySecret = new MetadataProxySecret(stack, 'MetadataProxySecret', {
    description: 'cldist: shared secret of the metadata proxies (HMAC-SHA256 of X-Instance-ID)',
  });
  const domain = apiDomain(stack, deploy);
  const httpApi = new apigw.HttpApi(stack, 'Api', {
    description: 'cldist instance config API',
    createDefaultStage: false,
    disableExecuteApiEndpoint: domain !== undefined,
  });
  const publicUrl =
    config.api.publicBaseUrl ??
    (domain === undefined ? httpApi.apiEndpoint : `https://${deploy.api.domainName}`);

  const fn = apiFunction(stack, props, publicUrl, proxySecret);
  const routes = addApiRoutes(httpApi, fn, deploy);
  const stage = apiStage(stack, httpApi, props, domain, routes.boot);
  for (const route of [
    ...routes.instance,
    ...routes.metadata,
    ...routes.update,
    ...routes.admin,
    ...routes.boot.routes,
  ]) {
    stage.node.addDependency(route);
  }
  acknowledgeUnsignedRoutes(routes);
  acknowledgeUpdateRoutes(routes.update);
  scheduleBodySweep(stack, fn);
  if (domain !== undefined) {
    new CfnOutput(stack, 'ApiDomainTarget', {
      value: domain.regionalDomainName,
      description: `Point a CNAME (or alias) for ${deploy.api.domainName} at this name`,
    });
  }
  new CfnOutput(stack, 'MetadataProxySecretArn', {
    value: proxySecret.secret.secretArn,
    description: 'Secret the metadata proxies sign with; copy its AWSCURRENT value to each --secret-file',
  });
  return { httpApi, fn, publicUrl, stage };
}

function apiDomain(stack: Stack, deploy: DeploySettings): apigw.DomainName | undefined {
  if (deploy.api.domainName === undefined || deploy.api.certificateArn === undefined) return undefined;
  return new apigw.DomainName(stack, 'ApiDomain', {
    domainName: deploy.api.domainName,
    certificate: acm.Certificate.fromCertificateArn(stack, 'ApiCertificate', deploy.api.certificateArn),
    securityPolicy: apigw.SecurityPolicy.TLS_1_2,
  });
}

function apiFunction(
  stack: Stack,
  props: ApiProps,
  publicUrl: string,
  proxySecret: MetadataProxySecret,
): CldistFunction {
  const { config, storage } = props;
  const { table, configBucket, configKey } = storage;
  const fn = new CldistFunction(stack, 'ApiHandler', {
    entry: props.entry,
    projectRoot: props.projectRoot,
    description: 'cldist API: instance config admin and fetch, release list and retry',
    serviceName: serviceNames.api,
    config: {
      ...config,
      api: { ...config.api, publicBaseUrl: publicUrl },
      boot: {
        ...config.boot,
        ...(props.mirrorPublicUrl === undefined
          ? {}
          : { mirrorBaseUrl: config.boot.mirrorBaseUrl ?? props.mirrorPublicUrl }),
      },
    },
    resources: {
      tableName: table.tableName,
      configBucket: configBucket.bucketName,
      configKmsKeyId: configKey.keyArn,
      jobsQueueUrl: props.jobs.queueUrl,
      metadataProxySecretArn: proxySecret.secret.secretArn,
      ...(props.mirrorPublicUrl === undefined ? {} : { mirrorPublicUrl: props.mirrorPublicUrl }),
    },
    memorySize: 1024,
    timeout: Duration.seconds(15),
    logRetentionDays: props.logRetention,
  });
  grantLedger(fn, table, { key: configKey, instances: true });
  props.jobs.grantSendMessages(fn);
  grantObjects(fn, configBucket, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']);
  grantBucketKey(fn, configKey);
  proxySecret.grantReadAccepted(fn);
  acknowledgeObjectWildcard(
    fn.role ?? fn,
    configBucket,
    'Instance configs are keyed by instance ids created at run time through the admin API; the API may only get, put and delete objects in the config bucket.',
  );
  return fn;
}

/** One gateway route per app route, from the list the app itself registers. */
function addApiRoutes(httpApi: apigw.HttpApi, fn: CldistFunction, deploy: DeploySettings): RouteGroups {
  const integration = new HttpLambdaIntegration('ApiIntegration', fn, {
    payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
  });
  const iamAuthorizer = new HttpIamAuthorizer();
  const addRoutes = (routes: readonly ApiRoute[], authorizer?: apigw.IHttpRouteAuthorizer) =>
    routes.flatMap((route) =>
      httpApi.addRoutes({
        path: route.path,
        methods: [apigw.HttpMethod[route.method]],
        integration,
        authorizer,
      }),
    );
  return {
    instance: addRoutes(apiRoutes.instance),
    metadata: addRoutes(apiRoutes.metadata),
    update: addRoutes(apiRoutes.update),
    admin: addRoutes(apiRoutes.admin, iamAuthorizer),
    boot: new BootRoutes(httpApi, 'BootRoutes', {
      httpApi,
      integration,
      rateLimit: deploy.api.bootRateLimit,
      burstLimit: deploy.api.bootBurstLimit,
    }),
  };
}

const accessLogFields = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  caller: '$context.identity.userArn',
  routeKey: '$context.routeKey',
  status: '$context.status',
  responseLength: '$context.responseLength',
  latencyMs: '$context.responseLatency',
  integrationError: '$context.integrationErrorMessage',
};

function apiStage(
  stack: Stack,
  httpApi: apigw.HttpApi,
  props: ApiProps,
  domain: apigw.DomainName | undefined,
  boot: BootRoutes,
): apigw.HttpStage {
  const { deploy } = props;
  const accessLogs = new logs.LogGroup(stack, 'ApiAccessLogs', {
    retention: props.logRetention,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const stage = new apigw.HttpStage(stack, 'ApiStage', {
    httpApi,
    stageName: '$default',
    autoDeploy: true,
    throttle: { rateLimit: deploy.api.defaultRateLimit, burstLimit: deploy.api.defaultBurstLimit },
    accessLogSettings: {
      destination: new apigw.LogGroupLogDestination(accessLogs),
      format: AccessLogFormat.custom(JSON.stringify(accessLogFields)),
    },
    domainMapping: domain === undefined ? undefined : { domainName: domain },
  });
  // RouteSettings is untyped JSON in the L1, so its keys are written in CloudFormation's casing.
  const cfnStage = stage.node.defaultChild as apigw.CfnStage;
  cfnStage.routeSettings = Object.fromEntries([
    ...instanceRouteKeys.map((key) => [
      key,
      {
        ThrottlingRateLimit: deploy.api.instanceRateLimit,
        ThrottlingBurstLimit: deploy.api.instanceBurstLimit,
      },
    ]),
    ...metadataRouteKeys.map((key) => [
      key,
      {
        ThrottlingRateLimit: deploy.api.metadataRateLimit,
        ThrottlingBurstLimit: deploy.api.metadataBurstLimit,
      },
    ]),
    ...updateRouteSettings(deploy),
    ...Object.entries(boot.routeSettings),
  ]);
  return stage;
}

function acknowledgeUnsignedRoutes(routes: RouteGroups): void {
  for (const route of routes.metadata) {
    acknowledge(
      route,
      'AwsSolutions-APIG4',
      'Metadata routes are called by the trusted metadata proxies, which cannot sign with IAM from a ' +
        'hypervisor outside AWS; each request carries an HMAC-SHA256 of the instance id (or address) under ' +
        'the shared secret in Secrets Manager, checked by the function in constant time, and the routes are ' +
        'throttled separately.',
    );
  }
  for (const route of routes.instance) {
    acknowledge(
      route,
      'AwsSolutions-APIG4',
      'Instance routes are fetched by Ignition at first boot, which cannot sign requests. Each instance ' +
        'presents its own 256-bit token (checked in constant time by the function; wrong token = 404), ' +
        'and the route is throttled separately.',
    );
  }
}

/**
 * Config bodies no record points at (replaced, or written by a PUT that lost a race) are collected here,
 * never in the racing PUT: the API function itself, with a constant input it recognises.
 */
function scheduleBodySweep(stack: Stack, fn: CldistFunction): void {
  new eventbridge.Rule(stack, 'ConfigBodySweep', {
    description: 'cldist: remove instance config bodies that no instance record points at',
    schedule: eventbridge.Schedule.rate(Duration.days(1)),
  }).addTarget(
    new targets.LambdaFunction(fn, {
      event: eventbridge.RuleTargetInput.fromObject(configBodySweepEvent),
      retryAttempts: 0,
    }),
  );
}
