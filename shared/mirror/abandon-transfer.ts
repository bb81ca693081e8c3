import { describeError } from '../errors.ts';
import type { Download } from '../http/fetch.ts';
import type { StagedUpload } from '../store/types.ts';
import type { MirrorLogger } from './deps.ts';

/**
 * What a transfer that did not commit leaves behind: the connection is released and the staged bytes are
 * thrown away. A failed abort is only logged, because the error that ended the transfer is the one to report
 * (the store's lifecycle rule or the next start reaps what an abort could not).
 */
export async function abandonTransfer(
  download: Download,
  upload: StagedUpload | undefined,
  key: string,
  logger: MirrorLogger,
): Promise<void> {
  download.cancel();
  await upload?.abort().catch((error: unknown) => {
    logger.warn('store.abort_failed', { key, error: describeError(error) });
  });
}
