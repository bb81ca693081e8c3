import { z } from 'zod';

/**
 * docs/cost.md's machine-readable parts: the counts table and the dollars table (between `cost-counts` and
 * `cost-dollars` markers), the prices and the example release (fenced `json cost-prices` and `json
 * cost-release` blocks). The dollars are derived from the others here, so the test can say what the page
 * should hold.
 */

export interface CostCounts {
  dynamoReadUnits: number;
  dynamoWriteUnits: number;
  s3PutClass: number;
  s3GetClass: number;
  sqsRequests: number;
  snsPublishes: number;
  lambdaInvocations: number;
  apiRequests: number;
}

export const countColumns: Array<{ key: keyof CostCounts; header: string }> = [
  { key: 'dynamoReadUnits', header: 'DynamoDB read units' },
  { key: 'dynamoWriteUnits', header: 'DynamoDB write units' },
  { key: 's3PutClass', header: 'S3 PUT-class' },
  { key: 's3GetClass', header: 'S3 GET-class' },
  { key: 'sqsRequests', header: 'SQS requests' },
  { key: 'snsPublishes', header: 'SNS publishes' },
  { key: 'lambdaInvocations', header: 'Lambda invocations' },
  { key: 'apiRequests', header: 'API Gateway requests' },
];

export const countRows = {
  registration: 'registration, `PUT /v1/instances/{id}`',
  registrationBulk: 'registration in bulk, `POST /v1/instances` (100 lines a request), per instance',
  fetch: 'config fetch, `GET /v1/instances/{id}/ignition`',
  fetchOneTime: 'config fetch of a one-time config',
  pollUnchanged: 'poll that finds nothing new, per channel and board',
  releaseFixed: 'release mirrored: fixed part',
  releasePerArtifact: 'release mirrored: per artifact (with its `.sig`)',
  releasePerExtraPart: "release mirrored: per upload part past an artifact's first",
} as const;
export type CountRow = keyof typeof countRows;

const pricesSchema = z.object({
  region: z.string(),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  dynamodb: z.object({ writeUnitsPerMillion: z.number(), readUnitsPerMillion: z.number() }),
  s3: z.object({
    putClassPerThousand: z.number(),
    getClassPerThousand: z.number(),
    standardGbMonth: z.number(),
  }),
  lambda: z.object({
    requestsPerMillion: z.number(),
    arm64GbSecond: z.number(),
    apiMemoryMiB: z.number(),
    pollerMemoryMiB: z.number(),
    workerMemoryMiB: z.number(),
    apiMsPerRequest: z.number(),
    apiMsPerBulkLine: z.number(),
    pollerMsPerPoll: z.number(),
    workerMBps: z.number(),
    workerMsPerJob: z.number(),
  }),
  apiGateway: z.object({ httpApiPerMillion: z.number() }),
  sqs: z.object({ standardPerMillion: z.number() }),
  sns: z.object({ publishesPerMillion: z.number() }),
});
export type CostPrices = z.infer<typeof pricesSchema>;

const releaseSchema = z.object({
  name: z.string(),
  partSizeMiB: z.number().positive(),
  artifacts: z.array(z.object({ name: z.string(), bytes: z.number().int().positive() })).min(1),
});
export type CostRelease = z.infer<typeof releaseSchema>;

export interface CostInputs {
  counts: Record<CountRow, CostCounts>;
  prices: CostPrices;
  release: CostRelease;
  countsTable: string;
  dollarsTable: string;
}

export function between(text: string, name: string): string {
  const match = new RegExp(`<!-- ${name}:start -->\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(text);
  if (match === null)
    throw new Error(`docs/cost.md has no <!-- ${name}:start --> … <!-- ${name}:end --> block`);
  return (match[1] ?? '').replace(/\n$/, '');
}

function fenced(text: string, info: string): unknown {
  const match = new RegExp(`\`\`\`json ${info}\\n([\\s\\S]*?)\\n\`\`\``).exec(text);
  if (match === null) throw new Error(`docs/cost.md has no \`\`\`json ${info} block`);
  return JSON.parse(match[1] ?? '');
}

export function formatCount(n: number): string {
  return String(Math.round(n * 100) / 100);
}

export function renderCountsTable(counts: Record<CountRow, CostCounts>): string {
  const header = `| per | ${countColumns.map((c) => c.header).join(' | ')} |`;
  const rule = `|---|${countColumns.map(() => '---:').join('|')}|`;
  const rows = (Object.keys(countRows) as CountRow[]).map(
    (row) =>
      `| ${countRows[row]} | ${countColumns.map((c) => formatCount(counts[row][c.key])).join(' | ')} |`,
  );
  return [header, rule, ...rows].join('\n');
}

export function parseCostPage(text: string): CostInputs {
  const countsTable = between(text, 'cost-counts');
  const counts = {} as Record<CountRow, CostCounts>;
  for (const row of Object.keys(countRows) as CountRow[]) {
    const line = countsTable.split('\n').find((l) => l.startsWith(`| ${countRows[row]} |`));
    if (line === undefined) throw new Error(`docs/cost.md's counts table has no row "${countRows[row]}"`);
    const cells = line
      .split('|')
      .slice(2, -1)
      .map((cell) => Number(cell.trim()));
    const entry = {} as CostCounts;
    for (const [i, column] of countColumns.entries()) entry[column.key] = cells[i] ?? Number.NaN;
    counts[row] = entry;
  }
  return {
    counts,
    prices: pricesSchema.parse(fenced(text, 'cost-prices')),
    release: releaseSchema.parse(fenced(text, 'cost-release')),
    countsTable,
    dollarsTable: between(text, 'cost-dollars'),
  };
}

export interface DollarRow {
  label: string;
  dynamodb: number;
  s3: number;
  lambda: number;
  apiGateway: number;
  sqs: number;
  sns: number;
  total: number;
}

function priced(
  label: string,
  prices: CostPrices,
  c: CostCounts,
  times: number,
  lambdaGbSeconds: number,
  storedGbMonths = 0,
): DollarRow {
  const row = {
    label,
    dynamodb:
      (times *
        (c.dynamoReadUnits * prices.dynamodb.readUnitsPerMillion +
          c.dynamoWriteUnits * prices.dynamodb.writeUnitsPerMillion)) /
      1e6,
    s3:
      (times *
        (c.s3PutClass * prices.s3.putClassPerThousand + c.s3GetClass * prices.s3.getClassPerThousand)) /
        1e3 +
      storedGbMonths * prices.s3.standardGbMonth,
    lambda:
      (times * c.lambdaInvocations * prices.lambda.requestsPerMillion) / 1e6 +
      lambdaGbSeconds * prices.lambda.arm64GbSecond,
    apiGateway: (times * c.apiRequests * prices.apiGateway.httpApiPerMillion) / 1e6,
    sqs: (times * c.sqsRequests * prices.sqs.standardPerMillion) / 1e6,
    sns: (times * c.snsPublishes * prices.sns.publishesPerMillion) / 1e6,
    total: 0,
  };
  row.total = row.dynamodb + row.s3 + row.lambda + row.apiGateway + row.sqs + row.sns;
  return row;
}

function sum(parts: Array<[CostCounts, number]>): CostCounts {
  const out = Object.fromEntries(countColumns.map((c) => [c.key, 0])) as unknown as CostCounts;
  for (const [counts, times] of parts) for (const c of countColumns) out[c.key] += counts[c.key] * times;
  return out;
}

/** What the example release costs in operations: the fixed part plus each artifact's and its parts'. */
export function releaseCounts(inputs: Pick<CostInputs, 'counts' | 'release'>): CostCounts {
  const partBytes = inputs.release.partSizeMiB * 1024 * 1024;
  const extraParts = inputs.release.artifacts.reduce(
    (n, a) => n + Math.max(0, Math.ceil(a.bytes / partBytes) - 1),
    0,
  );
  return sum([
    [inputs.counts.releaseFixed, 1],
    [inputs.counts.releasePerArtifact, inputs.release.artifacts.length],
    [inputs.counts.releasePerExtraPart, extraParts],
  ]);
}

const pollsPerMonth = 30 * 24 * 4;

export function costRows(inputs: CostInputs): DollarRow[] {
  const { counts, prices, release } = inputs;
  const l = prices.lambda;
  const gb = (mib: number) => mib / 1024;
  const apiGbSeconds = (perRequest: CostCounts) =>
    1e6 * perRequest.lambdaInvocations * gb(l.apiMemoryMiB) * (l.apiMsPerRequest / 1000);
  // A bulk request registers its lines one after another: its time grows with them.
  const bulkGbSeconds = 1e6 * gb(l.apiMemoryMiB) * (l.apiMsPerBulkLine / 1000);
  const releaseOps = releaseCounts(inputs);
  const bytes = release.artifacts.reduce((n, a) => n + a.bytes, 0);
  const jobs = releaseOps.lambdaInvocations - 1;
  const releaseGbSeconds =
    gb(l.pollerMemoryMiB) * (l.pollerMsPerPoll / 1000) +
    gb(l.workerMemoryMiB) * (bytes / (l.workerMBps * 1e6) + (jobs * l.workerMsPerJob) / 1000);
  return [
    priced(
      '1,000,000 registrations, one `PUT` each',
      prices,
      counts.registration,
      1e6,
      apiGbSeconds(counts.registration),
    ),
    priced('1,000,000 registrations in bulk', prices, counts.registrationBulk, 1e6, bulkGbSeconds),
    priced('1,000,000 config fetches', prices, counts.fetch, 1e6, apiGbSeconds(counts.fetch)),
    priced(
      '1,000,000 fetches of one-time configs',
      prices,
      counts.fetchOneTime,
      1e6,
      apiGbSeconds(counts.fetchOneTime),
    ),
    priced(
      'a month of polls every 15 minutes, per channel and board',
      prices,
      counts.pollUnchanged,
      pollsPerMonth,
      pollsPerMonth * gb(l.pollerMemoryMiB) * (l.pollerMsPerPoll / 1000),
    ),
    priced(`one release mirrored: ${release.name}`, prices, releaseOps, 1, releaseGbSeconds),
    priced(`a month of storing it in S3 Standard`, prices, sum([]), 0, 0, bytes / 1e9),
  ];
}

/** Whole dollars from 100, cents from 1, two significant digits below. */
export function formatDollars(n: number): string {
  if (n === 0) return '0';
  if (n >= 100) return n.toFixed(0);
  if (n >= 1) return n.toFixed(2);
  return n.toFixed(Math.min(12, 1 - Math.floor(Math.log10(n))));
}

export function renderDollarsTable(inputs: CostInputs): string {
  const rows = costRows(inputs).map(
    (r) =>
      `| ${r.label} | ${[r.dynamodb, r.s3, r.lambda, r.apiGateway, r.sqs, r.sns, r.total].map(formatDollars).join(' | ')} |`,
  );
  return [
    '| US dollars for | DynamoDB | S3 | Lambda | API Gateway | SQS | SNS | total |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}
