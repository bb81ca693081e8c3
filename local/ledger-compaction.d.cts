/** LevelDB as the compaction sees it: classic-level's properties and `compactRange`. */
export interface CompactedLevel {
  readonly status: string;
  getProperty(property: string): string;
  compactRange(start: string, end: string): Promise<void>;
}

export interface CompactionOptions {
  checkMs: number;
  minFiles: number;
  minShare: number;
  onCompacted?: (done: { ms: number; filesBefore: number[]; filesAfter: number[] }) => void;
  onFailed?: (error: unknown) => void;
}

/** Whether the files above the deepest non-empty level are enough, in number and share, to compact. */
export function worthCompacting(files: number[], limits: { minFiles: number; minShare: number }): boolean;

/** Checks every `checkMs` and compacts once writes have settled and it pays; returns the stop function. */
export function compactWhenSettled(levelDb: CompactedLevel, options: CompactionOptions): () => void;
