import * as z from 'zod';
import { attributeKeyPattern, hostnameProblem } from '../metadata/params.ts';

/**
 * How a machine is recognised when it network-boots. Every value is kept in one spelling, the one iPXE
 * writes into the request (`${net0/mac:hexhyp}`, `${uuid}`), so a selector saved as `52:54:00:AB:CD:EF`
 * matches a request for `52-54-00-ab-cd-ef`.
 */
export interface BootSelectors {
  mac?: string;
  uuid?: string;
  serial?: string;
  hostname?: string;
  /** Free `key=value` labels; a request matches when it carries every one of them. */
  labels: Record<string, string>;
}

/** What a boot request says about the machine: the same fields, every one optional. */
export type BootRequestFacts = BootSelectors;

/** The selector kinds with one value each, from most to least specific. */
export const hardwareKinds = ['mac', 'uuid', 'serial', 'hostname'] as const;
export type HardwareKind = (typeof hardwareKinds)[number];

/** Query names a boot request gives meaning to; any other query parameter is a label. */
export const reservedQueryNames = new Set<string>([...hardwareKinds, 'token']);

export const maxLabels = 16;

/**
 * A MAC address in iPXE's `hexhyp` form (`52-54-00-ab-cd-ef`, lower case), from that form, the colon
 * form GRUB's `net_default_mac` and most tools print, or 12 bare hex digits. Undefined if it is none.
 */
export function normalizeMac(text: string): string | undefined {
  const match =
    /^([0-9a-f]{2})([:-]?)([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(
      text.trim(),
    );
  if (match === null) return undefined;
  return [match[1], match[3], match[4], match[5], match[6], match[7]].join('-').toLowerCase();
}

/** Why a normalised MAC cannot name one machine, or undefined. */
export function macProblem(mac: string): string | undefined {
  if (mac === '00-00-00-00-00-00') return 'is the all-zero address, which no interface boots with';
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    return 'is a multicast or broadcast address (lowest bit of the first octet set), not an interface';
  }
  return undefined;
}

/** An SMBIOS UUID as iPXE's `${uuid}` prints it: lower case, 8-4-4-4-12; braces and bare hex accepted. */
export function normalizeUuid(text: string): string | undefined {
  const bare = text
    .trim()
    .replace(/^\{(.*)\}$/, '$1')
    .replaceAll('-', '')
    .toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(bare)) return undefined;
  const hyphenated = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
  if (!hyphenated.test(text.trim().replace(/^\{(.*)\}$/, '$1'))) return undefined;
  return `${bare.slice(0, 8)}-${bare.slice(8, 12)}-${bare.slice(12, 16)}-${bare.slice(16, 20)}-${bare.slice(20)}`;
}

/**
 * Firmware that has no UUID reports all zeros or all ones (SMBIOS 2.6, section 7.2.1), which every such
 * machine shares: a selector on it would match them all, and a request carrying it says nothing.
 */
export function isPlaceholderUuid(uuid: string): boolean {
  return /^[0-]+$/.test(uuid) || /^[f-]+$/.test(uuid);
}

/** A serial number as firmware reports it: printable ASCII, outer spaces dropped, at most 64 characters. */
export function normalizeSerial(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.length > 64 || !/^[\x20-\x7e]+$/.test(trimmed)) return undefined;
  return trimmed;
}

/** Placeholders vendors ship instead of a serial; shared by many machines, so never a selector. */
const placeholderSerials = new Set([
  'to be filled by o.e.m.',
  'default string',
  'system serial number',
  'not specified',
  '0',
  'none',
  'n/a',
]);

export function isPlaceholderSerial(serial: string): boolean {
  return placeholderSerials.has(serial.toLowerCase());
}

/** Host names compare case-insensitively (RFC 4343), so they are kept in lower case. */
export function normalizeHostname(text: string): string | undefined {
  const lower = text.trim().toLowerCase().replace(/\.$/, '');
  return hostnameProblem(lower) === undefined ? lower : undefined;
}

const labelValuePattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/;

function refine<T>(
  normalize: (text: string) => T | undefined,
  expected: string,
  problem?: (v: T) => string | undefined,
) {
  return z.string().transform((value, ctx) => {
    const normal = normalize(value);
    if (normal === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value.slice(0, 64)}" is not ${expected}` });
      return z.NEVER;
    }
    const why = problem?.(normal);
    if (why !== undefined) {
      ctx.addIssue({ code: 'custom', message: `${String(normal)} ${why}` });
      return z.NEVER;
    }
    return normal;
  });
}

const labels = z.record(z.string(), z.string()).superRefine((value, ctx) => {
  const keys = Object.keys(value);
  if (keys.length > maxLabels) ctx.addIssue({ code: 'custom', message: `at most ${maxLabels} labels` });
  for (const key of keys) {
    if (!attributeKeyPattern.test(key) || reservedQueryNames.has(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: reservedQueryNames.has(key)
          ? `"${key}" is a selector of its own, not a label; give it as "${key}"`
          : 'expected a key of letters, digits, "_", "." or "-", starting with a letter or "_"',
      });
    }
    const given = value[key] ?? '';
    if (!labelValuePattern.test(given)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'expected a value of 1 to 63 letters, digits, ".", "_", ":" or "-" (it travels in a URL)',
      });
    }
  }
});

/** The selector fields of an admin body; each error names the field. */
export const bootSelectorShape = {
  mac: refine(normalizeMac, 'a MAC address (52:54:00:ab:cd:ef or 52-54-00-ab-cd-ef)', macProblem).optional(),
  uuid: refine(normalizeUuid, 'a UUID (8-4-4-4-12 hex digits)', (uuid) =>
    isPlaceholderUuid(uuid) ? 'is the placeholder firmware reports when it has no UUID' : undefined,
  ).optional(),
  serial: refine(normalizeSerial, 'a serial number (1 to 64 printable ASCII characters)', (serial) =>
    isPlaceholderSerial(serial) ? 'is a vendor placeholder that many machines report' : undefined,
  ).optional(),
  hostname: refine(normalizeHostname, 'an RFC 1123 host name').optional(),
  labels: labels.optional(),
};

/**
 * What a boot request says, read leniently: a field that is not a valid value (iPXE leaves `${serial}`
 * empty when the firmware has none) or is a placeholder is treated as absent, and bad label parameters
 * are ignored, since a machine cannot be asked to fix its firmware.
 */
export function requestFacts(query: Record<string, string | undefined>): BootRequestFacts {
  const mac = query.mac === undefined ? undefined : normalizeMac(query.mac);
  const uuid = query.uuid === undefined ? undefined : normalizeUuid(query.uuid);
  const serial = query.serial === undefined ? undefined : normalizeSerial(query.serial);
  const hostname = query.hostname === undefined ? undefined : normalizeHostname(query.hostname);
  const given: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (Object.keys(given).length >= maxLabels) break;
    if (value === undefined || reservedQueryNames.has(key)) continue;
    if (attributeKeyPattern.test(key) && labelValuePattern.test(value)) given[key] = value;
  }
  return {
    ...(mac === undefined || macProblem(mac) !== undefined ? {} : { mac }),
    ...(uuid === undefined || isPlaceholderUuid(uuid) ? {} : { uuid }),
    ...(serial === undefined || isPlaceholderSerial(serial) ? {} : { serial }),
    ...(hostname === undefined ? {} : { hostname }),
    labels: given,
  };
}

/**
 * The selectors' hardware part as one string, the key of the ledger item that lists every record with
 * exactly those hardware values. Values are URI-encoded, so no value can forge a separator.
 */
export function hardwareKey(selectors: BootSelectors): string {
  return hardwareKinds
    .filter((kind) => selectors[kind] !== undefined)
    .map((kind) => `${kind}=${encodeURIComponent(selectors[kind] ?? '')}`)
    .join('&');
}

/** Every hardware key a request could be matched under: each subset of the kinds it carries. */
export function candidateKeys(facts: BootRequestFacts): string[] {
  const present = hardwareKinds.filter((kind) => facts[kind] !== undefined);
  const keys: string[] = [];
  for (let mask = 0; mask < 1 << present.length; mask++) {
    const subset: BootSelectors = { labels: {} };
    present.forEach((kind, bit) => {
      if ((mask & (1 << bit)) !== 0) subset[kind] = facts[kind];
    });
    keys.push(hardwareKey(subset));
  }
  return keys;
}

export function hasAnySelector(selectors: BootSelectors): boolean {
  return (
    hardwareKinds.some((kind) => selectors[kind] !== undefined) || Object.keys(selectors.labels).length > 0
  );
}

/** True if the request carries every selector of the record. */
export function selectorsMatch(selectors: BootSelectors, facts: BootRequestFacts): boolean {
  for (const kind of hardwareKinds) {
    if (selectors[kind] !== undefined && selectors[kind] !== facts[kind]) return false;
  }
  return Object.entries(selectors.labels).every(([key, value]) => facts.labels[key] === value);
}

/**
 * Specificity, as a list compared element by element: a MAC beats anything without one, then a UUID, a
 * serial, a host name, and among records with the same hardware kinds the one with more labels wins.
 */
export function specificity(selectors: BootSelectors): number[] {
  return [
    ...hardwareKinds.map((kind) => (selectors[kind] === undefined ? 0 : 1)),
    Object.keys(selectors.labels).length,
  ];
}

export function compareSpecificity(a: BootSelectors, b: BootSelectors): number {
  const left = specificity(a);
  const right = specificity(b);
  for (let index = 0; index < left.length; index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * Two records tie when some request would match both at the same specificity. Records with other hardware
 * values can never both match, and a different specificity is no tie, so only records under one hardware
 * key with the same number of labels are compared: they tie unless some label key they share differs.
 */
export function selectorsTie(a: BootSelectors, b: BootSelectors): boolean {
  if (hardwareKey(a) !== hardwareKey(b) || compareSpecificity(a, b) !== 0) return false;
  return Object.entries(a.labels).every(
    ([key, value]) => b.labels[key] === undefined || b.labels[key] === value,
  );
}

/** `mac=…, uuid=…, rack=7`: a selector set as an operator reads it in an error or on the status page. */
export function describeSelectors(selectors: BootSelectors): string {
  const parts = hardwareKinds
    .filter((kind) => selectors[kind] !== undefined)
    .map((kind) => `${kind}=${selectors[kind]}`);
  for (const [key, value] of Object.entries(selectors.labels).sort()) parts.push(`${key}=${value}`);
  return parts.length === 0 ? '(no selectors)' : parts.join(', ');
}
