import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Where the AWS clients point. Absent endpoints mean the real AWS service of the region. */
export interface AwsEndpoints {
  region?: string;
  s3?: string;
  sqs?: string;
  sns?: string;
  dynamodb?: string;
}

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  sns: SNSClient;
  dynamodb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
}

const emulatorCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * One place builds every client, so the emulator settings (path-style S3, checksums only when required,
 * dummy credentials) cannot drift between the local runner, the tests and the benchmarks.
 */
export function makeAwsClients(endpoints: AwsEndpoints = {}): AwsClients {
  // Against AWS the SDK takes the region from the runtime (AWS_REGION); emulators need one named.
  const base = (endpoint: string | undefined) =>
    endpoint === undefined
      ? endpoints.region === undefined
        ? {}
        : { region: endpoints.region }
      : { region: endpoints.region ?? 'us-east-1', endpoint, credentials: emulatorCredentials };
  const s3 = new S3Client({
    ...base(endpoints.s3),
    ...(endpoints.s3 === undefined
      ? {}
      : {
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }),
  });
  const dynamodb = new DynamoDBClient(base(endpoints.dynamodb));
  return {
    s3,
    sqs: new SQSClient(base(endpoints.sqs)),
    sns: new SNSClient(base(endpoints.sns)),
    dynamodb,
    doc: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
  };
}
