import { open } from 'node:fs/promises';

/**
 * The verifier pays a fixed cost per chunk its source yields, so files are read in fresh 1 MiB
 * `Uint8Array`s, each handed over for good (`bench/http-download.ts` compares chunk sizes).
 */
export async function* readChunks(path: string, chunkSize = 1 << 20): AsyncIterable<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    for (;;) {
      const buffer = new Uint8Array(chunkSize);
      let filled = 0;
      while (filled < chunkSize) {
        const { bytesRead } = await handle.read(buffer, filled, chunkSize - filled, null);
        if (bytesRead === 0) {
          break;
        }
        filled += bytesRead;
      }
      if (filled > 0) {
        yield filled === chunkSize ? buffer : buffer.subarray(0, filled);
      }
      if (filled < chunkSize) {
        return;
      }
    }
  } finally {
    await handle.close();
  }
}
