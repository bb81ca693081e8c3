import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { OmahaEventReport } from './fleet-record.ts';

/**
 * Parsing of the Omaha 3.0 requests update_engine sends (the shape in flatcar/ue-rs's
 * `src/testdata/omaha-request-example.xml`). Everything an instance sends is untrusted: the body is
 * size-capped by the route, a document type declaration is refused before any parsing (so no entity is
 * ever defined, let alone expanded), nesting and counts are capped, and every attribute is checked for
 * shape and length before the rest of the service sees it.
 */

/** Flatcar's (and CoreOS's) Omaha application ID for the OS itself. */
export const flatcarAppId = 'e96281a6-d1af-4bde-9a0a-97b76e56dc57';

/** A real request is under 1 KiB; a few apps and events fit many times over. */
export const maxOmahaBodyBytes = 16 * 1024;

const maxApps = 4;
const maxEventsPerApp = 16;
const maxNestedTags = 8;
const maxAttributeLength = 128;
/** update_engine writes 14 on `<app>`; a few more are tolerated for other clients. */
const maxAttributesPerElement = 32;

/** One Flatcar `<app>` of a request, checked. */
export interface OmahaAppRequest {
  readonly known: true;
  /** Lower case, braces removed. */
  readonly appId: string;
  /** The `appid` attribute exactly as sent, echoed in the answer. */
  readonly appIdAsSent: string;
  readonly version: string;
  readonly track: string;
  readonly board: string;
  readonly machineId: string;
  readonly oem?: string;
  readonly bootId?: string;
  readonly ping: boolean;
  readonly updateCheck: boolean;
  readonly events: readonly OmahaEventReport[];
}

/** An `<app>` of another application: nothing but its ID is read, since it is answered with an error. */
export interface UnknownOmahaApp {
  readonly known: false;
  readonly appId: string;
  readonly appIdAsSent: string;
  readonly updateCheck: boolean;
}

export interface OmahaRequest {
  readonly apps: readonly (OmahaAppRequest | UnknownOmahaApp)[];
}

/** Refused before any answer can be built: the body is not an Omaha 3.0 request at all. */
export class OmahaRequestError extends Error {
  /** `malformed-xml`, `doctype-refused`, `not-omaha`, `too-large`... */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OmahaRequestError';
    this.code = code;
  }
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // Attributes apart from child elements, so `<app ping="x">` cannot pose as a `<ping>` element.
  attributesGroupName: '$',
  processEntities: false,
  htmlEntities: false,
  parseAttributeValue: false,
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags,
  isArray: (name) => name === 'app' || name === 'event' || name === 'request',
});

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An own property only: an attribute called `__proto__` or `constructor` is just a name here. */
function own(node: Node, key: string): unknown {
  return Object.hasOwn(node, key) ? node[key] : undefined;
}

function attributesOf(node: unknown): Node {
  if (!isNode(node)) return {};
  const group = own(node, '$');
  return isNode(group) ? group : {};
}

/** The elements named `name` under `node`, however many (an empty `<x/>` parses as a string). */
function children(node: Node, name: string): unknown[] {
  const value = own(node, name);
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

const appIdPattern = /^\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?$/;
const shapes = {
  version: /^[0-9]+(\.[0-9]+){0,5}([+-][0-9A-Za-z._+-]{0,64})?$/,
  track: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/,
  board: /^[a-z0-9][a-z0-9_-]{0,31}$/,
  machineId: /^[A-Za-z0-9{}-]{1,64}$/,
  oem: /^[a-z0-9][a-z0-9_-]{0,62}$/,
  bootId: /^[A-Za-z0-9{}-]{1,64}$/,
} as const;
const examples: Record<keyof typeof shapes, string> = {
  version: 'digits and dots, e.g. 4081.2.0',
  track: 'a group name, e.g. stable',
  board: 'a board name, e.g. amd64-usr',
  machineId: 'the hex machine ID from /etc/machine-id',
  oem: 'an OEM ID such as ami or qemu',
  bootId: 'a UUID',
};

function attribute(
  attributes: Node,
  name: string,
  field: keyof typeof shapes,
  required: boolean,
  where: string,
): string | undefined {
  const value = own(attributes, name);
  if (value === undefined || value === '') {
    if (required) throw new OmahaRequestError('missing-attribute', `${where} has no ${name} attribute`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length > maxAttributeLength || !shapes[field].test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : 'a repeated attribute';
    throw new OmahaRequestError('bad-attribute', `${where} ${name} is ${shown}, not ${examples[field]}`);
  }
  return value;
}

function integerAttribute(attributes: Node, name: string, where: string): number | undefined {
  const value = own(attributes, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^-?[0-9]{1,10}$/.test(value)) {
    throw new OmahaRequestError('bad-attribute', `${where} ${name} is not an integer`);
  }
  return Number(value);
}

function parseEvent(node: unknown, where: string): OmahaEventReport {
  const attributes = attributesOf(node);
  const type = integerAttribute(attributes, 'eventtype', where);
  const result = integerAttribute(attributes, 'eventresult', where);
  if (type === undefined || result === undefined) {
    throw new OmahaRequestError('missing-attribute', `${where} needs eventtype and eventresult`);
  }
  const errorCode = integerAttribute(attributes, 'errorcode', where);
  return { type, result, ...(errorCode === undefined ? {} : { errorCode }) };
}

function parseApp(node: unknown, index: number): OmahaAppRequest | UnknownOmahaApp {
  const where = `<app> ${index + 1}`;
  const attributes = attributesOf(node);
  const appIdAsSent = own(attributes, 'appid');
  if (typeof appIdAsSent !== 'string' || appIdAsSent === '') {
    throw new OmahaRequestError('missing-attribute', `${where} has no appid attribute`);
  }
  const id = appIdPattern.exec(appIdAsSent)?.[1];
  if (id === undefined) {
    throw new OmahaRequestError(
      'bad-attribute',
      `${where} appid ${JSON.stringify(appIdAsSent.slice(0, 40))} is not a UUID (with or without braces)`,
    );
  }
  const body = isNode(node) ? node : {};
  const appId = id.toLowerCase();
  if (appId !== flatcarAppId) {
    return { known: false, appId, appIdAsSent, updateCheck: children(body, 'updatecheck').length > 0 };
  }
  const events = children(body, 'event');
  if (events.length > maxEventsPerApp) {
    throw new OmahaRequestError('too-many', `${where} has more than ${maxEventsPerApp} <event> elements`);
  }
  const oem = attribute(attributes, 'oem', 'oem', false, where);
  const bootId = attribute(attributes, 'bootid', 'bootId', false, where);
  return {
    known: true,
    appId,
    appIdAsSent,
    version: attribute(attributes, 'version', 'version', true, where) ?? '',
    track: attribute(attributes, 'track', 'track', true, where) ?? '',
    board: attribute(attributes, 'board', 'board', true, where) ?? '',
    machineId: attribute(attributes, 'machineid', 'machineId', true, where) ?? '',
    ...(oem === undefined ? {} : { oem }),
    ...(bootId === undefined ? {} : { bootId }),
    ping: children(body, 'ping').length > 0,
    updateCheck: children(body, 'updatecheck').length > 0,
    events: events.map((event, i) => parseEvent(event, `${where} <event> ${i + 1}`)),
  };
}

/** The first element with more attributes than allowed, found by walking the (depth-capped) tree. */
function tooManyAttributes(node: unknown, name: string): string | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = tooManyAttributes(item, name);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isNode(node)) return undefined;
  for (const [key, value] of Object.entries(node)) {
    if (key === '$') {
      if (isNode(value) && Object.keys(value).length > maxAttributesPerElement) return name;
      continue;
    }
    const found = tooManyAttributes(value, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The checked request, or an {@link OmahaRequestError} naming what is wrong. The caller caps the body's
 * size before calling.
 */
export function parseOmahaRequest(text: string): OmahaRequest {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new OmahaRequestError(
      'doctype-refused',
      'document type declarations and entities are refused; update_engine never sends them',
    );
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new OmahaRequestError(
      'malformed-xml',
      `request body is not well-formed XML: ${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`,
    );
  }
  let document: unknown;
  try {
    document = parser.parse(text);
  } catch (cause) {
    throw new OmahaRequestError('malformed-xml', `request body cannot be read: ${(cause as Error).message}`, {
      cause,
    });
  }
  const crowded = tooManyAttributes(document, 'document');
  if (crowded !== undefined) {
    throw new OmahaRequestError(
      'too-many',
      `<${crowded}> has more than ${maxAttributesPerElement} attributes`,
    );
  }
  const requests = isNode(document) ? children(document, 'request') : [];
  const request = requests[0];
  if (requests.length !== 1 || !isNode(request)) {
    throw new OmahaRequestError('not-omaha', 'request body has no single <request> root element');
  }
  const protocol = own(attributesOf(request), 'protocol');
  if (protocol !== '3.0') {
    throw new OmahaRequestError(
      'unsupported-protocol',
      `<request protocol=${JSON.stringify(typeof protocol === 'string' ? protocol.slice(0, 16) : (protocol ?? null))}> is not Omaha 3.0`,
    );
  }
  const apps = children(request, 'app');
  if (apps.length === 0) throw new OmahaRequestError('not-omaha', '<request> has no <app> element');
  if (apps.length > maxApps) {
    throw new OmahaRequestError('too-many', `<request> has more than ${maxApps} <app> elements`);
  }
  return { apps: apps.map(parseApp) };
}
