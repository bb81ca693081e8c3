import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PermanentError, TransientError } from '../errors.ts';
import { type Item, type LedgerTable, ledgerTable, partitionKeyName } from '../ledger/access.ts';
import {
  ledgerIndex,
  ledgerIndexEntry,
  ledgerIndexListing,
  ledgerItems,
  ledgerKindAttribute,
} from '../ledger/table.ts';
import type { BootProfile } from './profiles.ts';
import { type BootSelectors, describeSelectors, hardwareKey, selectorsTie } from './selectors.ts';

/** An instance's part in bare-metal boot: how it is recognised and which profile it boots. */
export interface BootSelection {
  id: string;
  selectors: BootSelectors;
  profile: string;
  /** Each boot token works for one successful config fetch only. */
  oneTimeToken: boolean;
  updatedAt: string;
}

/** A boot token handed out in a script; only its hash is kept. */
export interface BootTokenEntry {
  hash: string;
  expiresAt: string;
  /** When the instance's config was served with it (a one-time token then stops working). */
  usedAt?: string;
}

export interface StoredSelection extends BootSelection {
  tokens: BootTokenEntry[];
  /** When an install-to-disk profile's installer fetched the instance's config; its next boot is local. */
  installedAt?: string;
  /** Bumped by every write, so token updates are conditional on what was read. */
  rev: number;
}

/** A record another instance holds would tie with this one at boot: refused at save, naming it. */
export class SelectorTieError extends PermanentError {
  readonly holder: string;
  constructor(holder: string, selectors: BootSelectors, theirs: BootSelectors) {
    super(
      'selector-tie',
      `instance "${holder}" (${describeSelectors(theirs)}) would match the same boot requests as ` +
        `${describeSelectors(selectors)} with the same specificity; make one of them more specific ` +
        '(add a selector or label) or remove the other',
    );
    this.name = 'SelectorTieError';
    this.holder = holder;
  }
}

/** So many records share one set of hardware values that the item listing them would grow too large. */
export const maxGroupMembers = 100;

/** Profiles, selections and boot tokens in the ledger table (keys in `shared/ledger/table.ts`). */
export interface BootStore {
  getProfile(name: string): Promise<BootProfile | undefined>;
  putProfile(profile: BootProfile): Promise<void>;
  /** False if there was none. */
  deleteProfile(name: string): Promise<boolean>;
  listProfiles(): Promise<BootProfile[]>;
  getSelection(id: string): Promise<StoredSelection | undefined>;
  /**
   * Saves an instance's selectors, refusing (SelectorTieError) one that would tie with another
   * instance's. The check and the listing are one conditional write, so of two racing saves that would
   * tie, one is refused, even while the winner has not yet written its own item.
   */
  putSelection(selection: BootSelection): Promise<void>;
  deleteSelection(id: string): Promise<boolean>;
  /** Every instance listed under these hardware keys, with the selectors it was listed with. */
  candidates(keys: readonly string[]): Promise<{ id: string; selectors: BootSelectors }[]>;
  /** Replaces the tokens (and sets `installedAt`) if the selection is still at `rev`; false if not. */
  saveState(
    id: string,
    state: { tokens: BootTokenEntry[]; installedAt?: string },
    rev: number,
  ): Promise<boolean>;
}

const maxConflictRetries = 8;

function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function toProfile(item: Item): BootProfile {
  const install = parseJson<BootProfile['install'] | null>(item.install, null);
  return {
    name: String(item.name),
    channel: String(item.channel),
    board: String(item.board),
    version: String(item.version),
    kernelArgs: parseJson<string[]>(item.kernelArgs, []),
    ...(install === null ? {} : { install }),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
  };
}

function toSelection(id: string, item: Item): StoredSelection {
  return {
    id,
    selectors: parseJson<BootSelectors>(item.selectors, { labels: {} }),
    profile: String(item.profile),
    oneTimeToken: item.oneTimeToken === true,
    updatedAt: String(item.updatedAt),
    tokens: parseJson<BootTokenEntry[]>(item.tokens, []),
    rev: typeof item.rev === 'number' ? item.rev : 0,
    ...(typeof item.installedAt === 'string' ? { installedAt: item.installedAt } : {}),
  };
}

type Members = Record<string, BootSelectors>;

/**
 * A group lists a member before the member's own item is written, so a racing save that reads the group
 * in between must not take the member for a leftover of a crashed save. Each join leaves a claim that
 * counts the member as live until it lapses; a save that crashed mid-way stops blocking after that.
 */
type Claims = Record<string, string>;

interface Group {
  members: Members;
  claims: Claims;
}

export const selectionClaimMs = 60_000;

export function createDynamoBootStore(
  doc: DynamoDBDocumentClient,
  tableName: string,
  clock: () => Date = () => new Date(),
): BootStore {
  return bootStoreOn(ledgerTable(doc, tableName, clock));
}

async function getSelection(table: LedgerTable, id: string): Promise<StoredSelection | undefined> {
  const item = await table.get('get boot selection', ledgerItems.bootSelection(id));
  return item === undefined ? undefined : toSelection(id, item);
}

/** Read-modify-write of one group item, conditional on its revision; `change` may throw to refuse. */
async function updateGroup(
  table: LedgerTable,
  key: string,
  change: (group: Group) => Promise<Group>,
): Promise<void> {
  for (let attempt = 0; attempt < maxConflictRetries; attempt++) {
    const item = await table.get('get boot selector group', ledgerItems.bootSelectorGroup(key));
    const rev = typeof item?.rev === 'number' ? item.rev : 0;
    const { members, claims } = await change({
      members: parseJson<Members>(item?.members, {}),
      claims: parseJson<Claims>(item?.claims, {}),
    });
    const written =
      Object.keys(members).length === 0
        ? await table.delete('drop boot selector group', ledgerItems.bootSelectorGroup(key), {
            condition: 'rev = :rev',
            values: { ':rev': rev },
          })
        : await table.put(
            'write boot selector group',
            {
              ...ledgerItems.bootSelectorGroup(key),
              [ledgerKindAttribute]: 'boot-selector-group',
              members: JSON.stringify(members),
              ...(Object.keys(claims).length === 0 ? {} : { claims: JSON.stringify(claims) }),
              rev: rev + 1,
            },
            item === undefined
              ? { condition: 'attribute_not_exists(#pk)', names: partitionKeyName }
              : { condition: 'rev = :rev', values: { ':rev': rev } },
          );
    if (written || (item === undefined && Object.keys(members).length === 0)) return;
  }
  throw new TransientError('boot-selectors-busy', 'boot selectors are being changed concurrently; retry');
}

/**
 * A listed member whose selection is gone or moved on no longer counts (and is dropped on write), unless
 * its save is still within its claim.
 */
async function stillListed(
  table: LedgerTable,
  id: string,
  selectors: BootSelectors,
  claimedUntil: string | undefined,
): Promise<boolean> {
  const current = await getSelection(table, id);
  if (
    current !== undefined &&
    hardwareKey(current.selectors) === hardwareKey(selectors) &&
    describeSelectors(current.selectors) === describeSelectors(selectors)
  ) {
    return true;
  }
  return claimedUntil !== undefined && claimedUntil > table.clock().toISOString();
}

/** The group without one member. */
function without(group: Group, id: string): Group {
  const { [id]: _member, ...members } = group.members;
  const { [id]: _claim, ...claims } = group.claims;
  return { members, claims };
}

/**
 * A selection joins the group of its hardware key (refused on a tie with a live member, or past the group's
 * size) before its own item is written, and leaves its old group after.
 */
async function putSelection(table: LedgerTable, selection: BootSelection): Promise<void> {
  const previous = await getSelection(table, selection.id);
  const key = hardwareKey(selection.selectors);
  await updateGroup(table, key, async ({ members, claims }) => {
    const now = table.clock().toISOString();
    const next: Members = {};
    const nextClaims: Claims = {};
    for (const [id, theirs] of Object.entries(members)) {
      if (id === selection.id) continue;
      const live = await stillListed(table, id, theirs, claims[id]);
      if (!live) continue;
      if (selectorsTie(selection.selectors, theirs)) {
        throw new SelectorTieError(id, selection.selectors, theirs);
      }
      next[id] = theirs;
      const claim = claims[id];
      if (claim !== undefined && claim > now) nextClaims[id] = claim;
    }
    if (Object.keys(next).length >= maxGroupMembers) {
      throw new PermanentError(
        'too-many-selectors',
        `${maxGroupMembers} instances already share ${describeSelectors({ ...selection.selectors, labels: {} })}; ` +
          'give this one a MAC, UUID or serial of its own',
      );
    }
    next[selection.id] = selection.selectors;
    nextClaims[selection.id] = new Date(Date.parse(now) + selectionClaimMs).toISOString();
    return { members: next, claims: nextClaims };
  });
  await table.put('put boot selection', {
    ...ledgerItems.bootSelection(selection.id),
    [ledgerKindAttribute]: 'boot-selection',
    selectors: JSON.stringify(selection.selectors),
    profile: selection.profile,
    oneTimeToken: selection.oneTimeToken,
    updatedAt: selection.updatedAt,
    tokens: JSON.stringify(previous?.tokens ?? []),
    rev: (previous?.rev ?? 0) + 1,
  });
  const oldKey = previous === undefined ? undefined : hardwareKey(previous.selectors);
  if (oldKey !== undefined && oldKey !== key) {
    await updateGroup(table, oldKey, async (group) => without(group, selection.id));
  }
}

export function bootStoreOn(table: LedgerTable): BootStore {
  return {
    async getProfile(name) {
      const item = await table.get('get boot profile', ledgerItems.bootProfile(name));
      return item === undefined ? undefined : toProfile(item);
    },
    async putProfile(profile) {
      await table.put('put boot profile', {
        ...ledgerItems.bootProfile(profile.name),
        ...ledgerIndexEntry(ledgerIndex.bootProfiles, profile.name),
        [ledgerKindAttribute]: 'boot-profile',
        name: profile.name,
        channel: profile.channel,
        board: profile.board,
        version: profile.version,
        kernelArgs: JSON.stringify(profile.kernelArgs),
        ...(profile.install === undefined ? {} : { install: JSON.stringify(profile.install) }),
        createdAt: profile.createdAt,
        updatedAt: profile.updatedAt,
      });
    },
    deleteProfile: (name) =>
      table.delete('delete boot profile', ledgerItems.bootProfile(name), {
        condition: 'attribute_exists(#pk)',
        names: partitionKeyName,
      }),
    async listProfiles() {
      const items = await table.query('list boot profiles', ledgerIndexListing(ledgerIndex.bootProfiles));
      return items.map(toProfile);
    },
    getSelection: (id) => getSelection(table, id),
    putSelection: (selection) => putSelection(table, selection),
    async deleteSelection(id) {
      const previous = await getSelection(table, id);
      if (previous === undefined) return false;
      await table.delete('delete boot selection', ledgerItems.bootSelection(id));
      await updateGroup(table, hardwareKey(previous.selectors), async (group) => without(group, id));
      return true;
    },
    async candidates(keys) {
      const items = await Promise.all(
        keys.map((key) => table.get('get boot selector group', ledgerItems.bootSelectorGroup(key))),
      );
      return items.flatMap((item) =>
        Object.entries(parseJson<Members>(item?.members, {})).map(([id, selectors]) => ({ id, selectors })),
      );
    },
    saveState: (id, state, rev) =>
      table.update('save boot tokens', ledgerItems.bootSelection(id), {
        set: [
          'tokens = :tokens',
          'rev = :next',
          ...(state.installedAt === undefined ? [] : ['installedAt = :installed']),
        ],
        condition: 'rev = :rev',
        values: {
          ':tokens': JSON.stringify(state.tokens),
          ':rev': rev,
          ':next': rev + 1,
          ...(state.installedAt === undefined ? {} : { ':installed': state.installedAt }),
        },
      }),
  };
}
