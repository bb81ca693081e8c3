import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../shared/config.ts';

export interface CliRun {
  /** The exit code; -1 when the process was killed (the timeout) or did not start. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` to its end, never rejecting: a failure is in the code and stderr the test asserts on. */
export function runCommand(
  command: string,
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The `cldist` command as a user runs it (`bin/cldist.js`), with `env` added to this process's. */
export function runCldist(
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliRun> {
  return runCommand(process.execPath, [join(projectRoot, 'bin/cldist.js'), ...args], {
    timeoutMs: options.timeoutMs,
    env: { ...process.env, ...options.env },
  });
}
