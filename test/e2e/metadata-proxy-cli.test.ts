import { type ChildProcess, spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../../shared/config.ts';
import { ask, type ContractApi, startContractApi } from '../support/metadata-proxy-harness.ts';
import { tempDir, waitFor } from './serve-harness.ts';

interface Run {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

function proxyCli(args: string[]): Run {
  const child = spawn(process.execPath, [join(projectRoot, 'bin/cldist.js'), 'metadata-proxy', ...args], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = {
    child,
    stdout: [],
    stderr: [],
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  child.stdout?.on('data', (chunk: Buffer) => run.stdout.push(chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => run.stderr.push(chunk.toString('utf8')));
  return run;
}

function events(run: Run): Array<Record<string, unknown>> {
  return run.stdout
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const secret = 'cli-secret-0123456789abcdef0123456789abcdef';

describe('cldist metadata-proxy on the command line', () => {
  let dir = '';
  let running: Run | undefined;
  let api: ContractApi | undefined;

  afterEach(async () => {
    if (running !== undefined && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    running = undefined;
    await api?.close();
    api = undefined;
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [[], /--listen is required/],
    [['--listen', '127.0.0.1:0'], /--api is required/],
    [
      ['--listen', '127.0.0.1', '--api', 'http://127.0.0.1:9', '--secret-file', 'f'],
      /--listen "127.0.0.1": expected ADDR:PORT/,
    ],
    [
      ['--listen', '127.0.0.1:0', '--api', 'mailto:x', '--secret-file', 'f'],
      /--api mailto:x: expected an http/,
    ],
    [
      ['--listen', '127.0.0.1:0', '--api', 'http://127.0.0.1:9', '--secret-file', '/nonexistent/secret'],
      /--secret-file \/nonexistent\/secret cannot be read/,
    ],
    [
      [
        '--listen',
        '127.0.0.1:0',
        '--api',
        'http://127.0.0.1:9',
        '--secret-file',
        'f',
        '--timeout-seconds',
        '0',
      ],
      /--timeout-seconds "0": expected a whole number from 1 to 120/,
    ],
  ])('exits 2 naming the flag: %j', async (args, message) => {
    running = proxyCli(args);
    expect(await running.exited).toBe(2);
    expect(running.stderr.join('')).toMatch(message);
  });

  it('serves an instance, logs JSON lines without the secret, and stops cleanly on SIGTERM', async () => {
    dir = await tempDir('proxy-cli');
    const file = join(dir, 'secret');
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    api = await startContractApi([secret]);
    api.addresses.set('127.0.0.41', 'i-cli');
    running = proxyCli([
      '--listen',
      '127.0.0.1:0',
      '--api',
      api.url,
      '--secret-file',
      file,
      '--log-format',
      'json',
    ]);
    const run = running;
    const listening = await waitFor(
      () => events(run).find((e) => e.event === 'proxy.listening'),
      'proxy.listening',
      20_000,
    );
    const answer = await ask(`${String(listening.url)}/openstack/latest/user_data`, { from: '127.0.0.41' });
    expect([answer.status, answer.body]).toEqual([200, 'user data of i-cli']);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    const names = events(running).map((e) => e.event);
    expect(names).toEqual(
      expect.arrayContaining([
        'proxy.listening',
        'proxy.request',
        'shutdown.signal',
        'proxy.stopping',
        'proxy.stopped',
      ]),
    );
    expect(running.stdout.join('')).not.toContain(secret);
    expect(running.stderr.join('')).toBe('');
  });
});
