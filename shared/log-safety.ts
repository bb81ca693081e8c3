/**
 * An absolute path of two or more segments, not preceded by a word character (so a store key such as
 * `stable/amd64-usr/1.0.0/x` is left alone).
 */
const absolutePath = /(?<![\w.~-])(?:\/[^\s'"`:,;()]+){2,}/g;

/**
 * A message fit for a log line seen by people who need not know the machine's layout: absolute paths (a
 * file system error names the data dir and the store root) become `<path>`, and line breaks become
 * spaces, so one error is one line.
 */
export function redactPaths(text: string): string {
  return text.replace(absolutePath, '<path>').replace(/\s*\n\s*/g, ' ');
}
