declare module 'fs-native-extensions' {
  /**
   * Try an exclusive (or, with `shared`, a shared) lock on the whole file behind `fd`: true when taken,
   * false when another holder has it. Linux: an `F_OFD_SETLK` lock; macOS: `flock`; Windows: `LockFileEx`.
   */
  export function tryLock(fd: number, options?: { shared?: boolean }): boolean;
  export function unlock(fd: number): void;
}
