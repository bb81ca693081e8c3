import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import type { Deployment } from './deployment.ts';
import { resolveString, resourcesOfType } from './template.ts';

/** A signed caller, as API Gateway's IAM authorizer describes it to the integration. */
export interface IamCaller {
  accessKey: string;
  accountId: string;
  callerId: string;
  userArn: string;
  userId: string;
}

export const operatorCaller: IamCaller = {
  accessKey: 'AKIAIOSFODNN7EXAMPLE',
  accountId: '000000000000',
  callerId: 'AIDAJQABLZS4A3QDU576Q',
  userArn: 'arn:aws:iam::000000000000:user/operator',
  userId: 'AIDAJQABLZS4A3QDU576Q',
};

export interface ApiRequest {
  method: string;
  /** Path and optional query, e.g. `/v1/instances/a/ignition?token=…`. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** The SigV4-signed caller; omit for an unsigned request. */
  iam?: IamCaller;
  sourceIp?: string;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Who answered: API Gateway itself (no route, not authorised) or the function. */
  answeredBy: 'gateway' | 'function';
  json<T = unknown>(): T;
}

interface Route {
  routeKey: string;
  method: string;
  segments: string[];
  authorization: string;
  functionLogicalId: string;
  payloadVersion: string;
}

function response(
  status: number,
  headers: Record<string, string>,
  body: string,
  by: ApiResponse['answeredBy'],
) {
  return { status, headers, body, answeredBy: by, json: <T>() => JSON.parse(body) as T };
}

/** Path parameters when `path` matches the route's pattern (`{id}`, greedy `{proxy+}`), else undefined. */
function matchPath(segments: string[], path: string[]): Record<string, string> | undefined {
  const parameters: Record<string, string> = {};
  for (const [index, segment] of segments.entries()) {
    const greedy = /^\{(.+)\+\}$/.exec(segment);
    if (greedy?.[1] !== undefined) {
      if (index >= path.length) return undefined;
      parameters[greedy[1]] = path.slice(index).join('/');
      return parameters;
    }
    const actual = path[index];
    if (actual === undefined) return undefined;
    const parameter = /^\{(.+)\}$/.exec(segment);
    if (parameter?.[1] !== undefined) parameters[parameter[1]] = decodeURIComponent(actual);
    else if (segment !== actual) return undefined;
  }
  return segments.length === path.length ? parameters : undefined;
}

/**
 * API Gateway HTTP API as the template configures it: the routes, their authorization type and the
 * function each integrates, with payload format 2.0 events. It answers itself where API Gateway would
 * (404 with no matching route, 403 for an unsigned request to an IAM route), and invokes the function's
 * warm container otherwise.
 */
export class HttpApi {
  readonly routes: Route[];
  private readonly domainName: string;
  private readonly apiId: string;

  constructor(private readonly deployment: Deployment) {
    const { scope } = deployment.standIns;
    const apis = resourcesOfType(deployment.template, 'AWS::ApiGatewayV2::Api');
    const [api] = apis;
    if (api === undefined || apis.length > 1) throw new Error(`expected one HTTP API, found ${apis.length}`);
    this.apiId = deployment.ref(api[0]);
    this.domainName = new URL(deployment.attribute(api[0], 'ApiEndpoint')).host;
    const integrations = new Map(resourcesOfType(deployment.template, 'AWS::ApiGatewayV2::Integration'));
    this.routes = resourcesOfType(deployment.template, 'AWS::ApiGatewayV2::Route').map(
      ([logicalId, route]) => {
        const props = route.Properties ?? {};
        const routeKey = String(props.RouteKey);
        const target = resolveString(props.Target, scope, `${logicalId}.Target`);
        const integrationRef = target.replace(/^integrations\//, '');
        const integrationId = [...integrations.keys()].find((id) => deployment.ref(id) === integrationRef);
        const integration = integrationId === undefined ? undefined : integrations.get(integrationId);
        if (integration === undefined) throw new Error(`route ${routeKey} targets unknown ${target}`);
        const uri = resolveString(
          integration.Properties?.IntegrationUri,
          scope,
          `${integrationId}.IntegrationUri`,
        );
        const fn = deployment.functions.find((f) => deployment.attribute(f.logicalId, 'Arn') === uri);
        if (fn === undefined)
          throw new Error(`route ${routeKey} integrates ${uri}, which is no function of the stack`);
        const [method = '', path = ''] = routeKey.split(' ');
        return {
          routeKey,
          method,
          segments: path.split('/').filter((s) => s !== ''),
          authorization: String(props.AuthorizationType ?? 'NONE'),
          functionLogicalId: fn.logicalId,
          payloadVersion: String(integration.Properties?.PayloadFormatVersion ?? '1.0'),
        };
      },
    );
  }

  private match(
    method: string,
    path: string,
  ): { route: Route; parameters: Record<string, string> } | undefined {
    const parts = path.split('/').filter((s) => s !== '');
    const candidates = this.routes
      .filter((route) => route.method === method || route.method === 'ANY')
      .map((route) => ({ route, parameters: matchPath(route.segments, parts) }))
      .filter((c): c is { route: Route; parameters: Record<string, string> } => c.parameters !== undefined)
      // The most specific route wins: more literal segments, then a fixed method over ANY.
      .sort(
        (a, b) =>
          b.route.segments.filter((s) => !s.startsWith('{')).length -
            a.route.segments.filter((s) => !s.startsWith('{')).length ||
          Number(b.route.method !== 'ANY') - Number(a.route.method !== 'ANY'),
      );
    const best = candidates[0];
    if (best !== undefined) return best;
    const fallback = this.routes.find((route) => route.routeKey === '$default');
    return fallback === undefined ? undefined : { route: fallback, parameters: {} };
  }

  /** The payload 2.0 event API Gateway would send for this request on `route`. */
  event(request: ApiRequest, route: Route, parameters: Record<string, string>): APIGatewayProxyEventV2 {
    const url = new URL(request.path, `https://${this.domainName}`);
    const headers: Record<string, string> = {
      host: this.domainName,
      'user-agent': 'cldist-deploy-test',
      'x-forwarded-proto': 'https',
    };
    for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
    const query = Object.fromEntries(url.searchParams.entries());
    const now = new Date();
    const iam = request.iam;
    const event = {
      version: '2.0',
      routeKey: route.routeKey,
      rawPath: url.pathname,
      rawQueryString: url.search.replace(/^\?/, ''),
      headers,
      ...(Object.keys(query).length === 0 ? {} : { queryStringParameters: query }),
      ...(Object.keys(parameters).length === 0 ? {} : { pathParameters: parameters }),
      requestContext: {
        accountId: this.deployment.standIns.scope.accountId,
        apiId: this.apiId,
        domainName: this.domainName,
        domainPrefix: this.domainName.split('.')[0] ?? '',
        http: {
          method: request.method,
          path: url.pathname,
          protocol: 'HTTP/1.1',
          sourceIp: request.sourceIp ?? '198.51.100.7',
          userAgent: headers['user-agent'] ?? '',
        },
        requestId: randomUUID(),
        routeKey: route.routeKey,
        stage: '$default',
        time: now.toUTCString(),
        timeEpoch: now.getTime(),
        ...(iam === undefined || route.authorization !== 'AWS_IAM'
          ? {}
          : {
              authorizer: {
                iam: { ...iam, cognitoIdentity: null, principalOrgId: null },
              },
            }),
      },
      ...(request.body === undefined ? {} : { body: request.body }),
      isBase64Encoded: false,
    };
    return event as unknown as APIGatewayProxyEventV2;
  }

  async request(request: ApiRequest): Promise<ApiResponse> {
    const path = new URL(request.path, 'https://x').pathname;
    const matched = this.match(request.method, path);
    if (matched === undefined) {
      return response(404, { 'content-type': 'application/json' }, '{"message":"Not Found"}', 'gateway');
    }
    if (matched.route.authorization === 'AWS_IAM' && request.iam === undefined) {
      return response(403, { 'content-type': 'application/json' }, '{"message":"Forbidden"}', 'gateway');
    }
    if (matched.route.payloadVersion !== '2.0') {
      throw new Error(
        `route ${matched.route.routeKey} uses payload ${matched.route.payloadVersion}, not 2.0`,
      );
    }
    const event = this.event(request, matched.route, matched.parameters);
    const result = await this.deployment.invoke<APIGatewayProxyResultV2>(
      matched.route.functionLogicalId,
      event,
    );
    return toResponse(result);
  }
}

/** Payload 2.0: a result without `statusCode` is a 200 with the result as its JSON body. */
function toResponse(result: APIGatewayProxyResultV2): ApiResponse {
  if (typeof result !== 'object' || result === null || result.statusCode === undefined) {
    return response(200, { 'content-type': 'application/json' }, JSON.stringify(result), 'function');
  }
  const headers = Object.fromEntries(
    Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  const body = result.body ?? '';
  return response(
    result.statusCode,
    headers,
    result.isBase64Encoded === true ? Buffer.from(body, 'base64').toString('utf8') : body,
    'function',
  );
}
