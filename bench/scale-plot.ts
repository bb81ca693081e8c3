import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { projectRoot } from '../shared/config.ts';
import { escapeXml, legendSvg, panel, type XAxis } from './plot.ts';

/**
 * What one bench/scale.ts run measured (its `--json` output), and the figure and table drawn from several:
 * docs/img/scale.svg (through bench/plot.ts's panels), docs/img/scale.json and the table between the
 * `scale-table` markers in docs/benchmarks.md.
 */
export const scaleResultSchema = z.object({
  instances: z.number().int().positive(),
  connections: z.number().int().positive(),
  seconds: z.number().positive(),
  rounds: z.number().int().positive(),
  node: z.string(),
  loadAverage: z.array(z.number()),
  registration: z.object({ perSecond: z.number(), seconds: z.number() }),
  random: z.object({
    perSecond: z.number(),
    p50Ms: z.number(),
    p99Ms: z.number(),
    cpuUsPerRequest: z.number(),
  }),
  hot: z.object({ perSecond: z.number(), p50Ms: z.number(), p99Ms: z.number(), cpuUsPerRequest: z.number() }),
  ratio: z.number(),
  failures: z.number().int(),
  generatorCpuShare: z.number(),
  rssMiB: z.object({ started: z.number(), registered: z.number(), afterGets: z.number(), peak: z.number() }),
  /** Of the RSS, the pages of mapped files (LevelDB's open table files). */
  mappedMiB: z.object({ registered: z.number(), afterGets: z.number() }).optional(),
  dataDir: z.object({ bytes: z.number(), ledgerBytes: z.number(), configBytes: z.number() }),
});
export type ScaleResult = z.infer<typeof scaleResultSchema>;

const colours = {
  random: '#1f77b4',
  hot: '#d62728',
  registration: '#2ca02c',
  rss: '#9467bd',
  disk: '#7f7f7f',
};
const instanceAxis: XAxis = {
  label: 'registered instances (log scale)',
  tick: (n) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n)),
  point: (n) => `${n} instances`,
};

function renderSvg(results: ScaleResult[]): string {
  const sizes = results.map((r) => r.instances);
  const points = (pick: (r: ScaleResult) => number): Array<[number, number]> =>
    results.map((r) => [r.instances, pick(r)]);
  const legend = legendSvg([
    { name: 'random-instance GET/s', colour: colours.random },
    { name: 'hot-instance GET/s', colour: colours.hot },
    { name: 'registrations/s', colour: colours.registration },
    { name: 'peak server RSS, MiB', colour: colours.rss },
    { name: 'data dir, bytes/instance ÷ 10', colour: colours.disk },
  ]);
  const load = results.map((r) => r.loadAverage[0]?.toFixed(2) ?? '?').join(', ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="780" height="370" viewBox="0 0 780 370" font-family="sans-serif" font-size="12">
<rect width="780" height="370" fill="#fff"/>
${panel(
  0,
  'Rates (median of rounds)',
  'per second',
  sizes,
  [
    { s: { name: 'random-instance GET', colour: colours.random }, values: points((r) => r.random.perSecond) },
    { s: { name: 'hot-instance GET', colour: colours.hot }, values: points((r) => r.hot.perSecond) },
    {
      s: { name: 'registration', colour: colours.registration },
      values: points((r) => r.registration.perSecond),
    },
  ],
  instanceAxis,
)}
${panel(
  390,
  'Memory and disk',
  'MiB, or bytes/instance ÷ 10',
  sizes,
  [
    { s: { name: 'peak server RSS (MiB)', colour: colours.rss }, values: points((r) => r.rssMiB.peak) },
    {
      s: { name: 'data dir (bytes/instance ÷ 10)', colour: colours.disk },
      values: points((r) => r.dataDir.bytes / r.instances / 10),
    },
  ],
  instanceAxis,
)}
${legend}
<text x="390" y="356" text-anchor="middle" fill="#555">${escapeXml(`bench/scale.ts, ${results[0]?.connections ?? '?'} connections, Node ${results[0]?.node ?? '?'}, 2 shared cores, load average at start ${load}`)}</text>
</svg>
`;
}

export function renderTable(results: ScaleResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.instances.toLocaleString('en-US')} | ${r.registration.perSecond.toFixed(0)} | ` +
      `${r.random.perSecond.toFixed(0)} (${r.random.cpuUsPerRequest.toFixed(0)} µs) | ${r.random.p50Ms.toFixed(1)} / ${r.random.p99Ms.toFixed(1)} ms | ` +
      `${r.hot.perSecond.toFixed(0)} (${r.hot.cpuUsPerRequest.toFixed(0)} µs) | ${r.hot.p50Ms.toFixed(1)} / ${r.hot.p99Ms.toFixed(1)} ms | ` +
      `${r.ratio.toFixed(2)} | ${r.rssMiB.started.toFixed(0)} → ${r.rssMiB.registered.toFixed(0)} → ${r.rssMiB.peak.toFixed(0)} MiB | ` +
      `${(r.dataDir.bytes / r.instances).toFixed(0)} B | ${r.loadAverage[0]?.toFixed(1) ?? '?'} |`,
  );
  return [
    '| instances | registrations/s | random GET/s (server CPU per GET) | random p50 / p99 | hot GET/s (server CPU per GET) | hot p50 / p99 | random / hot | server RSS: started → registered → peak | data dir per instance | load average |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

/** Results from `--json` files (one result each) or a saved docs/img/scale.json (a list). */
export async function readScaleResults(files: string[]): Promise<ScaleResult[]> {
  const results: ScaleResult[] = [];
  for (const file of files) {
    const parsed = z
      .union([scaleResultSchema, z.array(scaleResultSchema)])
      .safeParse(JSON.parse(await readFile(file, 'utf8')));
    if (!parsed.success) {
      throw new Error(`${file} is neither bench/scale.ts --json nor --plot output: ${parsed.error.message}`);
    }
    results.push(...(Array.isArray(parsed.data) ? parsed.data : [parsed.data]));
  }
  return results.sort((a, b) => a.instances - b.instances);
}

/** Writes the data, the figure and the page's table; returns what to print. */
export async function writeScalePlot(results: ScaleResult[]): Promise<string> {
  const imgDir = join(projectRoot, 'docs', 'img');
  await mkdir(imgDir, { recursive: true });
  const dataFile = join(imgDir, 'scale.json');
  await writeFile(dataFile, `${JSON.stringify(results, null, 2)}\n`);
  const svgFile = join(imgDir, 'scale.svg');
  await writeFile(svgFile, renderSvg(results));
  const table = renderTable(results);
  const page = join(projectRoot, 'docs', 'benchmarks.md');
  const text = await readFile(page, 'utf8');
  const marked = /(<!-- scale-table:start -->\n)[\s\S]*?(<!-- scale-table:end -->)/;
  if (marked.test(text)) {
    await writeFile(
      page,
      text.replace(marked, (_all, start: string, end: string) => `${start}${table}\n${end}`),
    );
  }
  return `wrote ${svgFile}, ${dataFile} and the table in ${page}\n${table}\n`;
}
