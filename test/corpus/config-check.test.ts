import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRawConfig } from '../../local/config-check.ts';
import { formatProblem } from '../../shared/config-issues.ts';
import { judgeName, knownBoards, knownChannels } from '../../shared/config-names.ts';
import { reportTallies, runCorpus } from './corpus-support.ts';

afterAll(() => reportTallies('config-check'));

const now = new Date('2026-12-01T00:00:00Z');

/** A dotted path of plain words or JSON-quoted keys (or "(top level)"), a colon, then the message. */
const word = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*")`;
const fieldThenMessage = new RegExp(String.raw`^(?:\(top level\)|${word}(?:\.${word})*): \S`);

/** One slip of the finger: a character dropped, or two neighbours swapped. */
const slip = (word: string) =>
  fc
    .tuple(fc.nat({ max: word.length - 2 }), fc.boolean())
    .map(([at, drop]) =>
      drop
        ? word.slice(0, at) + word.slice(at + 1)
        : word.slice(0, at) + (word[at + 1] ?? '') + (word[at] ?? '') + word.slice(at + 2),
    );

describe('bad-input corpus: config check', () => {
  it('any JSON value is a report, never a crash: valid exactly when no error, every error at a named field', async () => {
    await runCorpus('config check', fc.jsonValue(), async (value) => {
      const report = await checkRawConfig(value, now);
      expect(report.valid).toBe(report.errors.length === 0);
      for (const problem of [...report.errors, ...report.warnings]) {
        expect(formatProblem(problem)).toMatch(fieldThenMessage);
      }
      if (!report.valid)
        expect(report.effective === undefined || report.errors.some((e) => e.path === 'keyring')).toBe(true);
    });
  });

  it('a misspelt key is named at its path with the key that was meant', async () => {
    const keys: Array<[string[], string]> = [
      [[], 'channels'],
      [[], 'boards'],
      [[], 'artifacts'],
      [[], 'keyring'],
      [[], 'schedule'],
      [[], 'notifications'],
      [[], 'metadata'],
      [['keyring'], 'trustedFingerprints'],
      [['keyring'], 'expiryWarningDays'],
      [['schedule'], 'everyMinutes'],
      [['limits'], 'requestTimeoutSeconds'],
      [['worker'], 'concurrency'],
      [['api'], 'unknownIgnitionKeys'],
    ];
    const typo = fc
      .constantFrom(...keys)
      .chain(([parents, key]) => slip(key).map((wrong) => ({ parents, key, wrong })))
      .filter(({ key, wrong }) => key !== wrong);
    await runCorpus('config check', typo, async ({ parents, key, wrong }) => {
      let raw: Record<string, unknown> = { [wrong]: 1 };
      for (const parent of [...parents].reverse()) raw = { [parent]: raw };
      const report = await checkRawConfig(raw, now);
      const path = [...parents, wrong].join('.');
      expect(report.errors).toContainEqual({ path, message: 'unknown key', suggestion: key });
    });
  });

  it('a slip in a known board or channel name is an error naming a known name, never a mere warning', async () => {
    const names = fc.oneof(
      fc.constantFrom(...knownBoards).map((name) => ['board', name] as const),
      fc.constantFrom(...knownChannels, 'lts-2024', 'current-2023').map((name) => ['channel', name] as const),
    );
    const slipped = names.chain(([kind, name]) => slip(name).map((wrong) => ({ kind, wrong })));
    await runCorpus('config check', slipped, ({ kind, wrong }) => {
      const verdict = judgeName(kind, wrong);
      if (verdict.kind === 'known') return;
      expect(verdict.kind).toBe('typo');
    });
  });
});
