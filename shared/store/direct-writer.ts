import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { errorCode } from './local-fs.ts';

/**
 * The bulk of a staged file written with `O_DIRECT`, straight from memory to the disk, past the page cache.
 * A staged artifact is written once and not read back by the writer, so caching it buys nothing, while
 * filling fresh page-cache pages and writing them back costs several times the CPU of the direct path on a
 * virtual machine (`dd bs=1M oflag=direct` against plain `dd`; `npm run bench:mirror-once` measures the
 * whole command). Durability is unchanged: the store still fsyncs before it renames.
 *
 * `O_DIRECT` wants the memory, the length and the file offset aligned to the device's logical block
 * (open(2), "O_DIRECT"). Blocks are 1 MiB at 1 MiB offsets, and their memory is a WebAssembly memory,
 * whose buffer starts on a page boundary; only the last, shorter piece goes through the page cache. Where
 * a file system refuses `O_DIRECT` at open, or the platform has none, the file is written as before; a
 * direct write refused as misaligned (`EINVAL`) is written again through the page cache, and so is every
 * block after it.
 */

const blockBytes = 1 << 20;
const wasmPageBytes = 1 << 16;
/** Blocks a file keeps: one filling while the other is written. */
const blocksPerFile = 2;
const maxIdleBlocks = 8;
const idleBlocks: Uint8Array[] = [];

function takeBlock(): Uint8Array {
  return (
    idleBlocks.pop() ??
    new Uint8Array(new WebAssembly.Memory({ initial: blockBytes / wasmPageBytes }).buffer, 0, blockBytes)
  );
}

function giveBack(blocks: Uint8Array[]): void {
  for (const block of blocks.splice(0)) {
    if (idleBlocks.length < maxIdleBlocks) idleBlocks.push(block);
  }
}

/** A second descriptor of a staged file opened with O_DIRECT, or undefined where that is not possible. */
export async function openDirect(path: string): Promise<FileHandle | undefined> {
  const direct = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (direct === undefined) return undefined;
  try {
    return await open(path, constants.O_WRONLY | direct);
  } catch (error) {
    if (errorCode(error) === 'EINVAL') return undefined;
    throw error;
  }
}

export class DirectWriter {
  private readonly blocks: Uint8Array[] = Array.from({ length: blocksPerFile }, takeBlock);
  private readonly writing: Array<Promise<void> | undefined> = [];
  private current = 0;
  private filled = 0;
  /** File offset of the block being filled. */
  private position = 0;
  private refused = false;
  private released = false;

  /** `direct` writes the aligned blocks; `buffered`, the same file's ordinary descriptor, the rest. */
  constructor(
    private readonly direct: FileHandle,
    private readonly buffered: FileHandle,
  ) {}

  /** Copies `chunk` into the blocks, writing each full one; resolves once the chunk may be reused. */
  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const block = this.blocks[this.current] as Uint8Array;
      const take = Math.min(chunk.byteLength - offset, blockBytes - this.filled);
      block.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === blockBytes) await this.flushBlock();
    }
  }

  /** Writes the last, shorter piece and waits for every write: afterwards the file holds every byte. */
  async finish(): Promise<void> {
    await Promise.all(this.writing);
    if (this.filled > 0) {
      await writeAt(
        this.buffered,
        (this.blocks[this.current] as Uint8Array).subarray(0, this.filled),
        this.position,
      );
      this.position += this.filled;
      this.filled = 0;
    }
  }

  /** Waits for the writes still running and gives the blocks back; the descriptor stays the caller's. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.allSettled(this.writing);
    giveBack(this.blocks);
  }

  private async flushBlock(): Promise<void> {
    const index = this.current;
    const block = this.blocks[index] as Uint8Array;
    const write = this.writeBlock(block, this.position);
    write.catch(() => undefined);
    this.writing[index] = write;
    this.position += blockBytes;
    this.filled = 0;
    this.current = (index + 1) % this.blocks.length;
    // The next block may still be on its way to the disk: it is filled only once it is written.
    await this.writing[this.current];
  }

  private async writeBlock(block: Uint8Array, position: number): Promise<void> {
    if (!this.refused) {
      try {
        await writeAt(this.direct, block, position);
        return;
      } catch (error) {
        if (errorCode(error) !== 'EINVAL') throw error;
        this.refused = true;
      }
    }
    await writeAt(this.buffered, block, position);
  }
}

async function writeAt(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
}
