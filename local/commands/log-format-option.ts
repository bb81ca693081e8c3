import { Option } from 'commander';

/** `--log-format`, the same for every long-running command, so their logs read alike. */
export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'log lines as JSON or short text (default: text on a terminal, JSON otherwise)',
  ).choices(['json', 'pretty']);
}
