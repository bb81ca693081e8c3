'use strict';
/**
 * Full compactions of the single-machine ledger's LevelDB after a large load, once its writes settle.
 *
 * LevelDB finds a key by looking in each level in turn, and in every level it must open the table file
 * that could hold the key (its index and bloom filter live in the file). A bulk registration leaves the
 * records spread over two or three levels, so a record read at random opens a file per level; with the
 * open-file bound `cldist serve` sets (see `ledger-thread.ts`), most of those files are not open, and
 * reopening them is most of a read's cost. Each read that has to look past a file also charges that file
 * a seek, and LevelDB compacts a file whose seeks are used up, so for a while after a load the reads
 * themselves set off compactions. A full compaction (`CompactRange` over every key) moves everything
 * into the deepest level at once, where a read opens one file. LevelDB never does this by itself: its
 * own compactions keep each level under a size, which is what spreads a large load over several.
 *
 * It runs only when it pays and when nobody is writing: the files above the deepest level are at least
 * `minFiles` and `minShare` of all of them, and LevelDB's own state (file counts per level and its memory
 * estimate, which grows with every write) has not changed between two checks `checkMs` apart. Once done,
 * it runs again only after new writes have grown the upper levels back to that share. Reads and writes go
 * on while it runs.
 */

const maxLevels = 7;

/** Table files per level, from LevelDB's `leveldb.num-files-at-level<N>` properties. */
function filesPerLevel(levelDb) {
  const files = [];
  for (let level = 0; level < maxLevels; level++) {
    files.push(Number(levelDb.getProperty(`leveldb.num-files-at-level${level}`)) || 0);
  }
  return files;
}

/** Whether the files above the deepest non-empty level are enough, in number and share, to compact. */
function worthCompacting(files, { minFiles, minShare }) {
  let deepest = -1;
  for (let level = files.length - 1; level >= 0 && deepest === -1; level--) {
    if ((files[level] ?? 0) > 0) deepest = level;
  }
  if (deepest <= 0) return false;
  const total = files.reduce((sum, count) => sum + count, 0);
  const above = total - (files[deepest] ?? 0);
  return above >= minFiles && above >= minShare * total;
}

/**
 * Checks every `checkMs` while LevelDB is open; `onCompacted({ ms, filesBefore, filesAfter })` and
 * `onFailed(error)` report. Returns the function that stops it (a compaction running finishes).
 */
function compactWhenSettled(levelDb, options) {
  const { checkMs, minFiles, minShare, onCompacted, onFailed } = options;
  let last = '';
  let running = false;
  const check = () => {
    if (running || levelDb.status !== 'open') return;
    const files = filesPerLevel(levelDb);
    const state = `${files.join(',')}/${levelDb.getProperty('leveldb.approximate-memory-usage')}`;
    const settled = state === last;
    last = state;
    if (!settled || !worthCompacting(files, { minFiles, minShare })) return;
    running = true;
    const startedAt = performance.now();
    levelDb.compactRange('', '\uffff').then(
      () => {
        running = false;
        last = '';
        onCompacted?.({
          ms: Math.round(performance.now() - startedAt),
          filesBefore: files,
          filesAfter: filesPerLevel(levelDb),
        });
      },
      (error) => {
        running = false;
        onFailed?.(error);
      },
    );
  };
  const timer = setInterval(check, checkMs);
  timer.unref();
  return () => clearInterval(timer);
}

module.exports = { compactWhenSettled, worthCompacting };
