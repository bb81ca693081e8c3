import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { startLedgerThread } from '../local/runtime/ledger-thread.ts';
import { makeAwsClients } from '../shared/aws-clients.ts';
import { parseConfig } from '../shared/config.ts';
import { ledgerTableInput } from '../shared/ledger/table.ts';
import type { FleetCheckIn, FleetRecorder } from '../shared/update/fleet-record.ts';
import { createFleetRecording, fleetLedgerFor } from '../shared/update/fleet-runtime.ts';
import { median } from './support.ts';

/**
 * The fleet recorder on its own, as `cldist serve` runs it (dynalite in its ledger thread, the default
 * `fleet` settings): check-ins from `--machines` distinct machine ids paced at `--rate` per second for
 * `--seconds`, and what that costs the event loop that also answers the update checks. The peer, in the
 * same run, is the same paced loop with a recorder that does nothing: the difference in event-loop delay
 * is the recorder's (coalescing, and the BatchWriteItem flushes' marshalling).
 *
 *   npx tsx bench/fleet-recorder.ts [--seconds 10] [--rounds 3] [--machines 10000] [--rate 2000]
 */
const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    machines: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '2000' },
  },
});
const seconds = Number(flags.seconds);
const rounds = Number(flags.rounds);
const machines = Number(flags.machines);
const rate = Number(flags.rate);
for (const [name, value] of Object.entries({ seconds, rounds, machines, rate })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
}

function checkIn(n: number, at: string): FleetCheckIn {
  return {
    machineId: n.toString(16).padStart(32, '0'),
    bootId: `{${n.toString(16).padStart(8, '0')}-ad3e-4eb7-a4c2-ca0c0e31ec84}`,
    appId: 'e96281a6-d1af-4bde-9a0a-97b76e56dc57',
    group: 'stable',
    version: '4081.2.0',
    board: 'amd64-usr',
    oem: 'openstack',
    at,
    events: [],
    answer: { kind: 'noupdate' },
  };
}

interface RoundFigures {
  loopP99Ms: number;
  recordP99Us: number;
  checkIns: number;
}

/** Paced check-ins for `seconds`; every 1 ms tick records what is due, round-robin over the machines. */
async function run(recorder: FleetRecorder): Promise<RoundFigures> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const recordCosts: number[] = [];
  const total = rate * seconds;
  let next = 0;
  const started = performance.now();
  delay.enable();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
      const at = new Date().toISOString();
      for (; next < due; next++) {
        const t0 = performance.now();
        recorder.record(checkIn(next % machines, at));
        if (next % 16 === 0) recordCosts.push((performance.now() - t0) * 1000);
      }
      if (next < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  delay.disable();
  recordCosts.sort((a, b) => a - b);
  return {
    loopP99Ms: delay.percentile(99) / 1e6,
    recordP99Us: recordCosts[Math.floor(recordCosts.length * 0.99)] ?? Number.NaN,
    checkIns: next,
  };
}

const dir = await mkdtemp(join(tmpdir(), 'cldist-bench-fleet-'));
const ledgerThread = await startLedgerThread({ path: join(dir, 'ledger') });
const clients = makeAwsClients({ dynamodb: ledgerThread.endpoint });
try {
  const config = parseConfig({});
  await clients.dynamodb.send(new CreateTableCommand(ledgerTableInput(config.table)));
  const ledger = fleetLedgerFor(clients.doc, config.table, config);
  const errors: string[] = [];
  const { recorder } = createFleetRecording(ledger, config, {
    clock: () => new Date(),
    onError: (error, dropped) => errors.push(`${String(error)} (dropped ${dropped})`),
  });
  const none: FleetRecorder = { record: () => {} };
  process.stdout.write(
    `${machines} machines, ${rate} check-ins/s, ${seconds} s per run, ${rounds} rounds, flush every ${config.fleet.flushIntervalSeconds} s; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  const recorded: RoundFigures[] = [];
  const bare: RoundFigures[] = [];
  let maxPending = 0;
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? (['recorder', 'none'] as const) : (['none', 'recorder'] as const);
    for (const which of order) {
      const watch = setInterval(() => {
        maxPending = Math.max(maxPending, recorder.stats().pending);
      }, 100);
      const figures = await run(which === 'recorder' ? recorder : none);
      clearInterval(watch);
      (which === 'recorder' ? recorded : bare).push(figures);
      process.stdout.write(
        `round ${round}  ${which.padEnd(8)}  event-loop delay p99 ${figures.loopP99Ms.toFixed(2)} ms   record() p99 ${figures.recordP99Us.toFixed(1)} µs   ${figures.checkIns} check-ins\n`,
      );
    }
  }
  const t0 = performance.now();
  await recorder.close();
  const closeMs = performance.now() - t0;
  let stored = 0;
  for await (const _machine of ledger.scanFleet()) stored++;
  const stats = recorder.stats();
  process.stdout.write(
    [
      '',
      `medians over ${rounds} rounds`,
      `  with the recorder: event-loop delay p99 ${median(recorded.map((r) => r.loopP99Ms)).toFixed(2)} ms, record() p99 ${median(recorded.map((r) => r.recordP99Us)).toFixed(1)} µs`,
      `  without (peer):    event-loop delay p99 ${median(bare.map((r) => r.loopP99Ms)).toFixed(2)} ms`,
      `  recorded ${stats.recorded}, machine states written ${stats.written}, dropped ${stats.dropped}, most waiting at once ${maxPending}, final flush ${closeMs.toFixed(0)} ms`,
      `  machines in the ledger: ${stored} of ${machines}; flush errors: ${errors.length === 0 ? 'none' : errors.join('; ')}`,
      '',
    ].join('\n'),
  );
  if (stored < machines || stats.dropped > 0) process.exitCode = 1;
} finally {
  clients.doc.destroy();
  clients.dynamodb.destroy();
  await ledgerThread.close();
  await rm(dir, { recursive: true, force: true });
}
