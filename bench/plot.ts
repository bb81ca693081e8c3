import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { z } from 'zod';
import { projectRoot } from '../shared/config.ts';

/**
 * The published transfer figure: runs bench/transfer.ts at several artifact sizes (or reads the JSON a
 * previous run wrote), then writes docs/img/transfer.json (the data), docs/img/transfer.svg (throughput and
 * peak RSS against size, cldist beside gpg, sqv and sha512sum) and the table between the `transfer-table` markers in
 * docs/benchmarks.md, so the page, the plot and the data cannot disagree.
 *
 *   npx tsx bench/plot.ts [--sizes 64,256,512,1024] [--rounds 5] [--from docs/img/transfer.json]
 */

const rowSchema = z.object({
  label: z.string(),
  sizeMiB: z.number().positive(),
  mbps: z.array(z.number()).min(1),
  rss: z.array(z.number()).min(1),
});
const resultSchema = z.object({
  node: z.string(),
  rounds: z.number().int().positive(),
  rows: z.array(rowSchema).min(1),
  loadAverage: z.array(z.number()).optional(),
  /** Per size, cldist / gpg in each round (the two ran back to back), as bench/transfer.ts writes it. */
  ratios: z.record(z.string(), z.array(z.number()).min(1)).optional(),
});
type TransferResult = z.infer<typeof resultSchema>;

interface Series {
  name: string;
  colour: string;
  match: (label: string) => boolean;
  /** sqv maps the whole file, so its RSS is the file size: it is in the table, not on the RSS panel. */
  rss: boolean;
}

const series: Series[] = [
  {
    name: 'cldist mirror → local folder',
    colour: '#1f77b4',
    rss: true,
    match: (l) => l.includes('local folder'),
  },
  { name: 'cldist mirror → S3 (fauxqs)', colour: '#2ca02c', rss: true, match: (l) => l.includes('S3') },
  { name: 'gpg --verify', colour: '#d62728', rss: true, match: (l) => l.startsWith('gpg') },
  { name: 'sqv', colour: '#9467bd', rss: false, match: (l) => l.startsWith('sqv') },
  { name: 'sha512sum (no verify)', colour: '#7f7f7f', rss: true, match: (l) => l.startsWith('sha512sum') },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

interface Point {
  sizeMiB: number;
  mbps: number;
  rssMiB: number;
}

function pointsOf(result: TransferResult, s: Series): Point[] {
  return result.rows
    .filter((row) => s.match(row.label))
    .map((row) => ({ sizeMiB: row.sizeMiB, mbps: median(row.mbps), rssMiB: Math.max(...row.rss) }))
    .sort((a, b) => a.sizeMiB - b.sizeMiB);
}

/** Round an axis maximum up to 1, 2 or 5 times a power of ten so the tick labels stay readable. */
export function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

export function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** What the x axis shows: transfer plots artifact sizes, bench/scale.ts instance counts. */
/** The key under the panels: three entries a row, each a colour swatch and its name. */
export function legendSvg(entries: ReadonlyArray<{ name: string; colour: string }>): string {
  return entries
    .map(
      ({ name, colour }, i) =>
        `<rect x="${40 + (i % 3) * 250}" y="${296 + Math.floor(i / 3) * 18}" width="14" height="4" fill="${colour}"/><text x="${60 + (i % 3) * 250}" y="${302 + Math.floor(i / 3) * 18}">${escapeXml(name)}</text>`,
    )
    .join('\n');
}

export interface XAxis {
  label: string;
  /** A tick's label. */
  tick: (x: number) => string;
  /** How a point's tooltip names its x value. */
  point: (x: number) => string;
}

const sizeAxis: XAxis = {
  label: 'artifact size (MiB, log scale)',
  tick: String,
  point: (size) => `${size} MiB`,
};

/** One panel of line plots, x on a log scale; two fit side by side in a 780-wide SVG (x0 0 and 390). */
export function panel(
  x0: number,
  title: string,
  unit: string,
  sizes: number[],
  lines: Array<{ s: Pick<Series, 'name' | 'colour'>; values: Array<[number, number]> }>,
  xAxis: XAxis = sizeAxis,
): string {
  const width = 380;
  const height = 260;
  const left = x0 + 56;
  const top = 40;
  const plotW = width - 76;
  const plotH = height - 80;
  const yMax = niceCeiling(Math.max(...lines.flatMap((l) => l.values.map(([, v]) => v))) * 1.1);
  const logMin = Math.log2(Math.min(...sizes));
  const logMax = Math.log2(Math.max(...sizes));
  const xOf = (size: number) =>
    left + (logMax === logMin ? plotW / 2 : ((Math.log2(size) - logMin) / (logMax - logMin)) * plotW);
  const yOf = (value: number) => top + plotH - (value / yMax) * plotH;
  const parts: string[] = [
    `<text x="${x0 + width / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
    `<text x="${left + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle">${escapeXml(xAxis.label)}</text>`,
    `<text transform="translate(${x0 + 14} ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(unit)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const value = (yMax / 5) * i;
    const y = yOf(value);
    parts.push(
      `<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${value.toFixed(0)}</text>`,
    );
  }
  for (const size of sizes) {
    parts.push(
      `<text x="${xOf(size)}" y="${top + plotH + 18}" text-anchor="middle">${escapeXml(xAxis.tick(size))}</text>`,
      `<line x1="${xOf(size)}" y1="${top + plotH}" x2="${xOf(size)}" y2="${top + plotH + 5}" stroke="#333"/>`,
    );
  }
  for (const { s, values } of lines) {
    const path = values.map(([size, v]) => `${xOf(size).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${path}"/>`);
    for (const [size, v] of values) {
      parts.push(
        `<circle cx="${xOf(size).toFixed(1)}" cy="${yOf(v).toFixed(1)}" r="3.5" fill="${s.colour}"><title>${escapeXml(s.name)}: ${v.toFixed(0)} ${escapeXml(unit)} at ${escapeXml(xAxis.point(size))}</title></circle>`,
      );
    }
  }
  return parts.join('\n');
}

function renderSvg(result: TransferResult): string {
  const present = series
    .map((s) => ({ s, points: pointsOf(result, s) }))
    .filter((entry) => entry.points.length > 0);
  const sizes = [...new Set(result.rows.map((row) => row.sizeMiB))].sort((a, b) => a - b);
  const legend = legendSvg(present.map(({ s }) => s));
  const load =
    result.loadAverage === undefined
      ? ''
      : `, load average ${result.loadAverage.map((l) => l.toFixed(2)).join(' ')}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="780" height="370" viewBox="0 0 780 370" font-family="sans-serif" font-size="12">
<rect width="780" height="370" fill="#fff"/>
${panel(
  0,
  'Transfer throughput (median)',
  'MB/s',
  sizes,
  present.map(({ s, points }) => ({ s, values: points.map((p): [number, number] => [p.sizeMiB, p.mbps]) })),
)}
${panel(
  390,
  'Peak RSS (max of rounds)',
  'MiB',
  sizes,
  present
    .filter(({ s }) => s.rss)
    .map(({ s, points }) => ({ s, values: points.map((p): [number, number] => [p.sizeMiB, p.rssMiB]) })),
)}
${legend}
<text x="390" y="356" text-anchor="middle" fill="#555">${escapeXml(`bench/transfer.ts, ${result.rounds} rounds, Node ${result.node}, 2 shared cores${load}; sqv maps the file, so its RSS is in the table only`)}</text>
</svg>
`;
}

function renderTable(result: TransferResult): string {
  const sizes = [...new Set(result.rows.map((row) => row.sizeMiB))].sort((a, b) => a - b);
  const present = series.filter((s) => result.rows.some((row) => s.match(row.label)));
  const ours = present[0];
  const gpg = series[2];
  const header = [
    '| size (MiB) |',
    ...present.map((s) => ` ${s.name} MB/s |`),
    ...present.map((s) => ` ${s.name} peak RSS MiB |`),
    ' cldist / gpg (median of per-round ratios) |',
  ].join('');
  const rule = `|${'---:|'.repeat(present.length * 2 + 2)}`;
  const lines = sizes.map((size) => {
    const at = (s: Series) => pointsOf(result, s).find((p) => p.sizeMiB === size);
    const perRound = result.ratios?.[String(size)];
    const ratio =
      perRound !== undefined
        ? `${median(perRound).toFixed(2)}×`
        : ours !== undefined && gpg !== undefined && at(ours) && at(gpg)
          ? `${((at(ours)?.mbps ?? 0) / (at(gpg)?.mbps ?? 1)).toFixed(2)}×`
          : '–';
    return [
      `| ${size} |`,
      ...present.map((s) => ` ${at(s)?.mbps.toFixed(0) ?? '–'} |`),
      ...present.map((s) => ` ${at(s)?.rssMiB.toFixed(0) ?? '–'} |`),
      ` ${ratio} |`,
    ].join('');
  });
  return [header, rule, ...lines].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '64,256,512,1024' },
      rounds: { type: 'string', default: '5' },
      from: { type: 'string' },
    },
  });
  const imgDir = join(projectRoot, 'docs', 'img');
  await mkdir(imgDir, { recursive: true });
  const dataFile = join(imgDir, 'transfer.json');
  let result: TransferResult;
  if (values.from === undefined) {
    const before = loadavg();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./transfer.ts', import.meta.url)),
        '--sizes',
        values.sizes,
        '--rounds',
        values.rounds,
        '--json',
        dataFile,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    process.stdout.write(stdout);
    const raw = resultSchema.parse(JSON.parse(await readFile(dataFile, 'utf8')));
    result = { ...raw, loadAverage: before };
    await writeFile(dataFile, `${JSON.stringify(result, null, 2)}\n`);
  } else {
    const text = await readFile(values.from, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new Error(`${values.from} is not JSON`, { cause });
    }
    const parsed = resultSchema.safeParse(json);
    if (!parsed.success)
      throw new Error(`${values.from} is not bench/transfer.ts --json output: ${parsed.error.message}`);
    result = parsed.data;
  }

  const svgFile = join(imgDir, 'transfer.svg');
  await writeFile(svgFile, renderSvg(result));
  const written = values.from === undefined ? [svgFile, dataFile] : [svgFile];
  const table = renderTable(result);
  const page = join(projectRoot, 'docs', 'benchmarks.md');
  const text = await readFile(page, 'utf8').catch(() => undefined);
  const marked = /(<!-- transfer-table:start -->\n)[\s\S]*?(<!-- transfer-table:end -->)/;
  if (text !== undefined && marked.test(text)) {
    await writeFile(
      page,
      text.replace(marked, (_all, start: string, end: string) => `${start}${table}\n${end}`),
    );
    process.stdout.write(`wrote ${written.join(', ')} and the table in ${page}\n`);
  } else {
    process.stdout.write(`wrote ${written.join(', ')}; no transfer-table markers in ${page}, table:\n`);
  }
  process.stdout.write(`${table}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
