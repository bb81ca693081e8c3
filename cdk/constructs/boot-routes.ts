import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { Construct } from 'constructs';
import { apiRoutes, bootRouteKeys } from '../../shared/api-routes.ts';
import { acknowledge } from '../nag.ts';

export interface BootRoutesProps {
  httpApi: apigw.HttpApi;
  integration: apigw.HttpRouteIntegration;
  /** Steady-state requests per second on each boot route. */
  rateLimit: number;
  burstLimit: number;
}

/**
 * The network boot routes (`/boot.ipxe`, `/v1/boot/ipxe`, `/v1/boot/grub`, the boot token's config):
 * unauthenticated, because firmware can neither sign a request nor hold a secret, and throttled on their
 * own so a flood of boot requests cannot take the instance or admin routes' share. The stage applies
 * `routeSettings` (the throttles) by route key.
 */
export class BootRoutes extends Construct {
  readonly routes: apigw.HttpRoute[];
  readonly routeSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }>;

  constructor(scope: Construct, id: string, props: BootRoutesProps) {
    super(scope, id);
    this.routes = apiRoutes.boot.flatMap((route) =>
      props.httpApi.addRoutes({
        path: route.path,
        methods: [apigwv2.HttpMethod[route.method]],
        integration: props.integration,
      }),
    );
    this.routeSettings = Object.fromEntries(
      bootRouteKeys.map((key) => [
        key,
        { ThrottlingRateLimit: props.rateLimit, ThrottlingBurstLimit: props.burstLimit },
      ]),
    );
    for (const route of this.routes) {
      acknowledge(
        route,
        'AwsSolutions-APIG4',
        'Boot routes are called by iPXE and GRUB during a network boot, which cannot sign requests. The ' +
          'scripts name no secret but a boot token minted per request (256 bits, stored hashed, checked in ' +
          'constant time by the function on the config route), and the routes are throttled separately.',
      );
    }
  }
}
