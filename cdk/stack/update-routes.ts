import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { updateRouteKeys } from '../../shared/api-routes.ts';
import { acknowledge } from '../nag.ts';
import type { DeploySettings } from '../settings.ts';

/**
 * The Omaha endpoint's place on the gateway: unauthenticated, because update_engine signs nothing and
 * sends no token, and throttled on its own, so a fleet checking in cannot starve the other routes.
 */

/** The stage's per-route throttles of the Omaha routes, in CloudFormation's `RouteSettings` casing. */
export function updateRouteSettings(deploy: DeploySettings): [string, Record<string, number>][] {
  return updateRouteKeys.map((key) => [
    key,
    { ThrottlingRateLimit: deploy.api.updateRateLimit, ThrottlingBurstLimit: deploy.api.updateBurstLimit },
  ]);
}

export function acknowledgeUpdateRoutes(routes: readonly apigw.HttpRoute[]): void {
  for (const route of routes) {
    acknowledge(
      route,
      'AwsSolutions-APIG4',
      'The Omaha update endpoint is called by update_engine on every instance, which can neither sign ' +
        'requests nor send a token. It reveals only which verified releases a group is offered, answers ' +
        'from bounded caches with a guarded XML parser and a 16 KiB body limit, and is throttled separately.',
    );
  }
}
