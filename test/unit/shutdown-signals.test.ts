import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger, type LogRecord } from '../../local/runtime/log.ts';
import { watchShutdownSignals } from '../../local/runtime/signals.ts';

function setup() {
  const source = new EventEmitter();
  const records: LogRecord[] = [];
  const written: string[] = [];
  const exits: number[] = [];
  const signals = watchShutdownSignals({
    logger: createLogger({ format: 'json', write: () => {}, onRecord: (r) => records.push(r) }),
    write: (line) => written.push(line),
    exit: (code) => exits.push(code),
    source: source as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
  });
  return { source, records, written, exits, signals };
}

describe('shutdown signals', () => {
  it('starts shutdown on the first, only reports the second, forces on the third', async () => {
    const { source, records, written, exits, signals } = setup();
    source.emit('SIGTERM', 'SIGTERM');
    expect(await signals.first).toBe('SIGTERM');
    expect(written).toEqual([]);

    source.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([]);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/already shutting down/);
    expect(records.map((r) => r.event)).toEqual(['shutdown.already_in_progress']);

    source.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([130]);
    expect(written[1]).toMatch(/exiting now/);
    expect(records.map((r) => r.event)).toEqual(['shutdown.already_in_progress', 'shutdown.forced']);
  });

  it('stops listening once disposed', () => {
    const { source, signals } = setup();
    signals.dispose();
    expect(source.listenerCount('SIGTERM')).toBe(0);
    expect(source.listenerCount('SIGINT')).toBe(0);
  });
});
