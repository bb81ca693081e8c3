import { XMLBuilder } from 'fast-xml-parser';
import { LRUCache } from 'lru-cache';

/**
 * Omaha 3.0 answers as update_engine reads them (the shape of flatcar/ue-rs's
 * `src/testdata/omaha-response-example.xml`, which Nebraska serves). Built with the XML library, which
 * escapes every attribute, so a value can never break the document.
 */

/** One package of an update manifest. */
export interface OmahaPackage {
  readonly name: string;
  readonly size: number;
  /** SHA-1, base64: the `hash` update_engine checks the download against. */
  readonly sha1Base64: string;
  /** SHA-256, hex: `hash_sha256`, given for OEM and extension payloads. */
  readonly sha256Hex?: string;
  readonly required: boolean;
}

export interface OmahaUpdate {
  readonly status: 'ok';
  /** Ends with `/`: update_engine appends each package's name. */
  readonly codebase: string;
  readonly version: string;
  /** The main payload first. */
  readonly packages: readonly OmahaPackage[];
  /** SHA-256 of the main payload, base64: the postinstall action's `sha256`. */
  readonly postinstallSha256Base64: string;
}

export type OmahaUpdateCheck = OmahaUpdate | { readonly status: 'noupdate' | 'error-internal' };

/** The answer to one `<app>` of the request. */
export interface OmahaAppAnswer {
  /** Echoed as sent, braces and case included. */
  readonly appId: string;
  /** `ok`, or an error status such as `error-unknownApplication`. */
  readonly status: string;
  readonly ping: boolean;
  /** How many `<event>`s are acknowledged. */
  readonly events: number;
  readonly updateCheck?: OmahaUpdateCheck;
}

const server = 'cldist';
const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  suppressEmptyNode: true,
  // `required="true"` must be written out: update_engine reads the value, not the attribute's presence.
  suppressBooleanAttributes: false,
  processEntities: true,
});
const declaration = '<?xml version="1.0" encoding="UTF-8"?>\n';

type XmlNode = Record<string, unknown>;

function packageNode(p: OmahaPackage): XmlNode {
  return {
    '@name': p.name,
    '@hash': p.sha1Base64,
    ...(p.sha256Hex === undefined ? {} : { '@hash_sha256': p.sha256Hex }),
    '@size': String(p.size),
    '@required': String(p.required),
  };
}

function updateCheckNode(check: OmahaUpdateCheck): XmlNode {
  if (check.status !== 'ok') return { '@status': check.status };
  return {
    '@status': 'ok',
    urls: { url: { '@codebase': check.codebase } },
    manifest: {
      '@version': check.version,
      packages: { package: check.packages.map(packageNode) },
      actions: {
        action: {
          '@event': 'postinstall',
          '@sha256': check.postinstallSha256Base64,
          '@DisablePayloadBackoff': 'true',
        },
      },
    },
  };
}

function appNode(app: OmahaAppAnswer): XmlNode {
  return {
    '@appid': app.appId,
    '@status': app.status,
    ...(app.ping ? { ping: { '@status': 'ok' } } : {}),
    ...(app.updateCheck === undefined ? {} : { updatecheck: updateCheckNode(app.updateCheck) }),
    ...(app.events > 0 ? { event: Array.from({ length: app.events }, () => ({ '@status': 'ok' })) } : {}),
  };
}

/** Seconds since midnight UTC: Omaha's `<daystart>`, which clients use to count active days. */
function elapsedSeconds(now: Date): number {
  return now.getUTCHours() * 3600 + now.getUTCMinutes() * 60 + now.getUTCSeconds();
}

/**
 * Most of a fleet gets one of a few identical `<app>` answers (noupdate, or the same offer), so each is
 * built once and reused; the key is the whole answer, so two answers share a fragment only when equal.
 */
const fragments = new LRUCache<string, string>({ max: 1000 });

function appFragment(app: OmahaAppAnswer): string {
  const key = JSON.stringify(app);
  let fragment = fragments.get(key);
  if (fragment === undefined) {
    fragment = builder.build({ app: appNode(app) }) as string;
    fragments.set(key, fragment);
  }
  return fragment;
}

const close = '</response>';
/** The envelope's opening up to its `<daystart>`, for the second of the day it was built for. */
let opening = { second: -1, text: '' };

function openingFor(second: number): string {
  if (opening.second !== second) {
    const envelope = builder.build({
      response: { '@protocol': '3.0', '@server': server, daystart: { '@elapsed_seconds': String(second) } },
    }) as string;
    // The envelope ends in `</response>`; the apps, each a well-formed element, go before it.
    opening = { second, text: `${declaration}${envelope.slice(0, -close.length)}` };
  }
  return opening.text;
}

/** The whole answer document, XML declaration first. */
export function buildOmahaResponse(apps: readonly OmahaAppAnswer[], now: Date): string {
  return `${openingFor(elapsedSeconds(now))}${apps.map(appFragment).join('')}${close}`;
}

/**
 * The answer to a body that is not an Omaha request at all (HTTP 400): no `<app>` can be answered, so
 * the reason goes in an `<error>` element a person reading the client's log can act on.
 */
export function buildOmahaRefusal(code: string, message: string): string {
  return (
    declaration +
    builder.build({
      response: {
        '@protocol': '3.0',
        '@server': server,
        error: { '@status': `error-${code}`, '#text': message },
      },
    })
  );
}
