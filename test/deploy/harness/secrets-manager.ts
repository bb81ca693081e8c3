import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * Secrets Manager for the deploy tests: moto's server mode (the Python `moto` package, which speaks the
 * service's JSON protocol, keeps version stages and generates passwords as the service does). fauxqs and
 * dynalite have no Secrets Manager, and the API bundle reads the metadata proxies' secret from it.
 */
export interface SecretsManagerStandIn {
  endpoint: string;
  stop(): Promise<void>;
}

export class SecretsManagerUnavailableError extends Error {
  override name = 'SecretsManagerUnavailableError';
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Starts `python3 -m moto.server` on a free loopback port; resolves once it says it is listening. */
export async function startSecretsManager(timeoutMs = 30_000): Promise<SecretsManagerStandIn> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new SecretsManagerUnavailableError(`moto did not listen within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes(`Running on http://127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(
        new SecretsManagerUnavailableError(`cannot run python3 for moto: ${error.message}`, { cause: error }),
      );
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new SecretsManagerUnavailableError(
          `moto exited with ${code} before listening; the deploy tests need the Python package moto ` +
            `with its server extras (python3 -m moto.server):\n${output}`,
        ),
      );
    });
  });
  try {
    await ready;
  } catch (error) {
    await stopped(child);
    throw error;
  }
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => stopped(child) };
}
