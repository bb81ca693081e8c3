import * as z from 'zod';
import type { CldistConfig } from '../config.ts';
import { instanceParamsShape } from '../metadata/params.ts';
import { validateCloudConfig } from './cloud-config.ts';
import { InvalidInstanceConfigError, renderZodPath } from './errors.ts';
import { type ValidationIssue, validateIgnition } from './ignition.ts';
import { maxIgnitionDepth, nestingDepth } from './json-depth.ts';
import type { ConfigKind } from './types.ts';

/**
 * Parsing YAML is linear but not cheap (several microseconds a key), and it runs on the event loop, so a
 * cloud-config is capped well below the body limit: at 64 KiB, above what user data can carry on OpenStack
 * (Nova takes at most 65,535 bytes, base64-encoded) or EC2 (16 KiB), so no config that boots there is refused.
 */
export const maxCloudConfigBytes = 64 * 1024;

/** Ignition configs are small; anything near this is a mistake or an attack, and it bounds body memory. */
export const maxInstanceBodyBytes = 1024 * 1024;

export const contentTypes: Record<ConfigKind, string> = {
  ignition: 'application/vnd.coreos.ignition+json',
  'cloud-config': 'text/cloud-config; charset=utf-8',
};

const putBodySchema = z.strictObject({
  ignition: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
  cloudConfig: z.string().optional(),
  oneTime: z.boolean().optional(),
  expiresAt: z.iso.datetime({ offset: true, message: 'expected an ISO-8601 date-time' }).optional(),
  ...instanceParamsShape,
});

export type PutBody = z.infer<typeof putBodySchema>;

/** What a PUT body may be, for the message of a body that is neither. */
export const expectedBodyForms =
  'expected a raw Ignition config ({"ignition":{"version":"3.4.0"},"storage":…}) or the wrapped form ' +
  '{"ignition":{…} or "…", "oneTime"?, "expiresAt"?, "ips"?, "hostname"?, "sshKeys"?, …} ' +
  '(or {"cloudConfig":"#cloud-config…"})';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A raw Ignition config is known by its `ignition.version` (a string), which the wrapped form never has
 * at that place (there `ignition` is the whole config). It is wrapped here, as the text it came in when
 * that is known, so its bytes (and a `verification.hash` over them) are kept.
 */
export function unwrapRawIgnition(body: unknown, text?: string): unknown {
  if (!isObject(body) || !isObject(body.ignition) || typeof body.ignition.version !== 'string') return body;
  return { ignition: text ?? JSON.stringify(body) };
}

/** The PUT body's shape and the rules between its fields; the config itself is checked by `prepareBody`. */
export function parsePutBody(
  body: unknown,
  text: string | undefined,
  now: Date,
): { data: PutBody; expiresAt: Date | undefined } {
  const parsed = putBodySchema.safeParse(unwrapRawIgnition(body, text));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({
      path: renderZodPath(issue.path),
      message: issue.message,
    }));
    const atTop = parsed.error.issues.some((issue) => issue.path.length === 0);
    throw new InvalidInstanceConfigError(
      atTop ? [{ path: '$', message: expectedBodyForms }, ...issues] : issues,
    );
  }
  const expiresAt = parsed.data.expiresAt === undefined ? undefined : new Date(parsed.data.expiresAt);
  if (expiresAt !== undefined && expiresAt.getTime() <= now.getTime()) {
    throw new InvalidInstanceConfigError([{ path: '$.expiresAt', message: 'is in the past' }]);
  }
  if (parsed.data.oneTime === true && parsed.data.cloudConfig !== undefined) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.oneTime',
        message: 'cloud-config is read on every boot, so it cannot be one-time; leave oneTime out',
      },
    ]);
  }
  return { data: parsed.data, expiresAt };
}

export interface PreparedBody {
  kind: ConfigKind;
  body: Uint8Array;
  specVersion?: string;
  warnings: ValidationIssue[];
}

/** The bytes to store for a PUT, after the config in it passed the checks of its kind. */
export function prepareBody(input: PutBody, config: CldistConfig, strict: boolean): PreparedBody {
  const given = [input.ignition, input.cloudConfig].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new InvalidInstanceConfigError([
      { path: '$', message: `expected exactly one of "ignition" or "cloudConfig"; ${expectedBodyForms}` },
    ]);
  }
  if (input.cloudConfig !== undefined) return prepareCloudConfig(input.cloudConfig);
  return prepareIgnition(input.ignition, config, strict);
}

function prepareCloudConfig(cloudConfig: string): PreparedBody {
  const bytes = Buffer.byteLength(cloudConfig);
  if (bytes > maxCloudConfigBytes) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.cloudConfig',
        message:
          `is ${bytes} bytes; at most ${maxCloudConfigBytes} are accepted (more than OpenStack or EC2 ` +
          'user data can carry); ship large files through Ignition or fetch them at boot',
      },
    ]);
  }
  const issues = validateCloudConfig(cloudConfig);
  if (issues.length > 0) throw new InvalidInstanceConfigError(issues);
  return { kind: 'cloud-config', body: Buffer.from(cloudConfig, 'utf8'), warnings: [] };
}

/** The config as given (object, or the text it came in) and that text, which is what gets stored. */
function ignitionText(ignition: PutBody['ignition']): { parsed: unknown; text: string } {
  if (typeof ignition === 'string') {
    try {
      return { parsed: JSON.parse(ignition), text: ignition };
    } catch (cause) {
      throw new InvalidInstanceConfigError([
        { path: '$.ignition', message: `not valid JSON: ${(cause as Error).message}` },
      ]);
    }
  }
  // Before stringifying it: JSON.stringify recurses, so a deep enough value would overflow the stack.
  assertIgnitionDepth(ignition);
  return { parsed: ignition, text: JSON.stringify(ignition) };
}

function assertIgnitionDepth(parsed: unknown): void {
  if (nestingDepth(parsed, maxIgnitionDepth) > maxIgnitionDepth) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.ignition',
        message: `nested deeper than ${maxIgnitionDepth} levels; no Ignition spec needs that`,
      },
    ]);
  }
}

function prepareIgnition(ignition: PutBody['ignition'], config: CldistConfig, strict: boolean): PreparedBody {
  const { parsed, text } = ignitionText(ignition);
  assertIgnitionDepth(parsed);
  const result = validateIgnition(parsed, {
    allowLegacy: config.api.allowLegacyIgnition,
    unknownKeys: strict ? 'reject' : config.api.unknownIgnitionKeys,
  });
  if (result.errors.length > 0) throw new InvalidInstanceConfigError(result.errors);
  if (result.version?.startsWith('2.') === true && config.platform.baseIgnition !== undefined) {
    result.warnings.push({
      path: '$.ignition.version',
      message:
        'platform.baseIgnition is not merged into a 2.x config: an Ignition that reads 2.x cannot merge 3.x',
    });
  }
  return {
    kind: 'ignition',
    body: Buffer.from(text, 'utf8'),
    warnings: result.warnings,
    ...(result.version === undefined ? {} : { specVersion: result.version }),
  };
}
