import * as z from 'zod';

/**
 * What API Gateway's IAM authorizer adds to a payload 2.0 event once it has checked the caller's SigV4
 * signature (`requestContext.authorizer.iam`), as Hono's Lambda adapter hands it to the app in `c.env`.
 * The caller cannot write it: it is not a header, and a route without the authorizer has none.
 */
const authorizedEvent = z.object({
  requestContext: z.object({
    authorizer: z.object({ iam: z.object({ userArn: z.string().min(1) }) }),
  }),
});

/** The ARN the authorizer vouched for, or undefined when the request did not pass the IAM authorizer. */
export function gatewayIamCaller(env: unknown): string | undefined {
  const parsed = authorizedEvent.safeParse(env);
  return parsed.success ? parsed.data.requestContext.authorizer.iam.userArn : undefined;
}
