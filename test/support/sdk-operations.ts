import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';

/**
 * Counts the requests each AWS SDK client sends, by operation (`GetItem`, `BatchWriteItem`, `GetObject`,
 * …), through a middleware at the start of the client's stack. The document client shares its DynamoDB
 * client's stack, so its commands are counted under their low-level names. Retries of one command count
 * once: what is billed is the request the code made, and what a test compares is what the code asks for.
 */
export interface SdkOperationCounts {
  /** Operations sent since the last `reset`, by service and name, e.g. `{ 'dynamodb:GetItem': 3 }`. */
  snapshot(): Record<string, number>;
  /** The number of one operation since the last `reset`. */
  of(service: 'dynamodb' | 's3', operation: string): number;
  /** Every operation of a service since the last `reset`. */
  total(service: 'dynamodb' | 's3'): number;
  reset(): void;
}

export function countSdkOperations(clients: { dynamodb: DynamoDBClient; s3: S3Client }): SdkOperationCounts {
  const counts = new Map<string, number>();
  const counter = (service: string) => (context: { commandName?: string }) => {
    const key = `${service}:${(context.commandName ?? 'unknown').replace(/Command$/, '')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
  const countDynamo = counter('dynamodb');
  clients.dynamodb.middlewareStack.add(
    (next, context) => (args) => {
      countDynamo(context);
      return next(args);
    },
    { step: 'initialize', name: 'cldistOperationCounter', override: true },
  );
  const countS3 = counter('s3');
  clients.s3.middlewareStack.add(
    (next, context) => (args) => {
      countS3(context);
      return next(args);
    },
    { step: 'initialize', name: 'cldistOperationCounter', override: true },
  );
  return {
    snapshot: () => Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b))),
    of: (service, operation) => counts.get(`${service}:${operation}`) ?? 0,
    total: (service) =>
      [...counts].filter(([key]) => key.startsWith(`${service}:`)).reduce((sum, [, n]) => sum + n, 0),
    reset: () => counts.clear(),
  };
}
