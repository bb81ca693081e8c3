import { type BootRequestFacts, hardwareKinds } from './selectors.ts';

/** The two network boot loaders a script is written for. */
export type BootLoader = 'ipxe' | 'grub';

/** Everything a boot script names, already resolved and checked. */
export interface BootPlan {
  /** Shown on the machine's console, so an operator at the screen knows what it got. */
  title: string;
  kernelUrl: string;
  initramfsUrl: string;
  initramfsName: string;
  /** Profile arguments, then `ignition.config.url` (when an instance matched) and the platform id. */
  kernelArgs: string[];
}

/**
 * The query a machine sends, as iPXE fills it in. `hexhyp` is the only MAC form that needs no escaping
 * in a URL; `uristring` escapes whatever firmware put in a serial or a DHCP host name.
 */
export const ipxeQuery =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: iPXE settings, expanded by iPXE, not JavaScript
  'mac=${net0/mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&hostname=${hostname:uristring}';

/** `GET /boot.ipxe`: what DHCP hands to iPXE; it asks for this machine's own script. */
export function ipxeChainScript(baseUrl: string): string {
  return ['#!ipxe', `chain --autofree ${baseUrl}/v1/boot/ipxe?${ipxeQuery}`, ''].join('\n');
}

export function ipxeBootScript(plan: BootPlan): string {
  return [
    '#!ipxe',
    `echo ${consoleText(plan.title)}`,
    `kernel ${plan.kernelUrl} initrd=${plan.initramfsName} ${plan.kernelArgs.join(' ')}`,
    `initrd ${plan.initramfsUrl}`,
    'boot',
    '',
  ].join('\n');
}

/** Printable, and nothing either loader expands or splits on (`$`, quotes, `;`, `#`, braces, `\`). */
function consoleText(text: string): string {
  return text.replace(/[^A-Za-z0-9 ._,:=/+@%~()-]/g, '?');
}

/** The query that asks again with the same facts the machine sent. */
export function factsQuery(facts: BootRequestFacts): string {
  const query = new URLSearchParams();
  for (const kind of hardwareKinds) {
    const value = facts[kind];
    if (value !== undefined) query.set(kind, value);
  }
  for (const [key, value] of Object.entries(facts.labels)) query.set(key, value);
  return query.toString().replaceAll('+', '%20');
}

export function describeFacts(facts: BootRequestFacts): string {
  const parts = hardwareKinds
    .filter((kind) => facts[kind] !== undefined)
    .map((kind) => `${kind}=${facts[kind]}`);
  for (const [key, value] of Object.entries(facts.labels)) parts.push(`${key}=${value}`);
  return parts.length === 0 ? 'no mac, uuid, serial or hostname' : parts.join(' ');
}

/**
 * A machine that cannot boot yet (unknown, or nothing to boot) is told why on its console and asks again
 * after `retrySeconds`, with the same facts: registering it is enough, nobody has to power-cycle it.
 */
export function ipxeWaitScript(lines: readonly string[], retryUrl: string, retrySeconds: number): string {
  return [
    '#!ipxe',
    ...lines.map((line) => `echo ${consoleText(line)}`),
    `echo cldist: asking again in ${retrySeconds} s`,
    `sleep ${retrySeconds}`,
    `chain --replace --autofree ${retryUrl}`,
    '',
  ].join('\n');
}

/** Installed to disk already: iPXE gives the boot back to the firmware, which tries the next device. */
export function ipxeLocalBootScript(line: string): string {
  return ['#!ipxe', `echo ${consoleText(line)}`, 'exit', ''].join('\n');
}

/** GRUB fetches over HTTP by device: `(http,host:port)/path`. HTTPS it cannot fetch at all. */
export function grubPath(url: string): string | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:') return undefined;
  return `(http,${parsed.host})${parsed.pathname}${parsed.search}`;
}

/** Single quotes: GRUB expands nothing inside them, and no argument can hold one (see the patterns). */
function grubQuote(text: string): string {
  return `'${text.replaceAll("'", '')}'`;
}

export function grubBootScript(plan: BootPlan): string | undefined {
  const kernel = grubPath(plan.kernelUrl);
  const initramfs = grubPath(plan.initramfsUrl);
  if (kernel === undefined || initramfs === undefined) return undefined;
  return [
    'insmod http',
    'set default=0',
    'set timeout=0',
    `menuentry ${grubQuote(consoleText(plan.title))} {`,
    `  echo ${grubQuote('Loading kernel')}`,
    `  linux ${grubQuote(kernel)} ${plan.kernelArgs.map(grubQuote).join(' ')}`,
    `  echo ${grubQuote('Loading initramfs')}`,
    `  initrd ${grubQuote(initramfs)}`,
    '}',
    '',
  ].join('\n');
}

export function grubWaitScript(lines: readonly string[], retryUrl: string, retrySeconds: number): string {
  const retry = grubPath(retryUrl);
  return [
    ...lines.map((line) => `echo ${grubQuote(consoleText(line))}`),
    ...(retry === undefined
      ? [`echo ${grubQuote('cldist: GRUB cannot fetch over HTTPS; serve the boot routes over http')}`]
      : [
          `echo ${grubQuote(`cldist: asking again in ${retrySeconds} s`)}`,
          `sleep ${retrySeconds}`,
          'insmod http',
          `configfile ${grubQuote(retry)}`,
        ]),
    '',
  ].join('\n');
}

export function grubLocalBootScript(line: string): string {
  return [`echo ${grubQuote(consoleText(line))}`, 'exit', ''].join('\n');
}
