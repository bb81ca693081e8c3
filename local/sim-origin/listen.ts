import { once } from 'node:events';
import type { Server } from 'node:http';

function addressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

/** Listens, retrying with a bounded back-off while the address is in use, up to `waitMs`. */
export async function listenOn(server: Server, host: string, port: number, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    server.listen(port, host);
    try {
      // `once` rejects when the server emits 'error' (EADDRINUSE) before 'listening'.
      await once(server, 'listening');
      return;
    } catch (cause) {
      if (!addressInUse(cause) || Date.now() >= deadline) {
        const held = addressInUse(cause) && waitMs > 0 ? ` (still in use after ${waitMs} ms)` : '';
        throw new Error(`sim origin cannot listen on ${host}:${port}${held}: ${(cause as Error).message}`, {
          cause,
        });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 500)));
  }
}
