import { createHash, randomBytes } from 'node:crypto';
import { parseConfig } from '../../shared/config.ts';
import type { SourceConfig } from '../../shared/config-sources.ts';
import type { UpdateGroupLedger } from '../../shared/ledger/update-groups.ts';
import type { FleetCheckIn, FleetRecorder } from '../../shared/update/fleet-record.ts';
import type { UpdateGroup } from '../../shared/update/groups.ts';
import { flatcarAppId } from '../../shared/update/omaha-request.ts';
import {
  MAIN_UPDATE_PAYLOAD,
  type UpdatePayloadLookup,
  type UpdatePayloadRecord,
  updatePayloadKey,
} from '../../shared/update/payload-record.ts';

/** A payload's record computed from its bytes, as the mirror records a verified one. */
export function payloadRecord(
  board: string,
  version: string,
  name: string,
  bytes: Uint8Array,
): UpdatePayloadRecord {
  return {
    board,
    version,
    name,
    key: updatePayloadKey(board, version, name),
    size: bytes.byteLength,
    sha1Base64: createHash('sha1').update(bytes).digest('base64'),
    sha256Hex: createHash('sha256').update(bytes).digest('hex'),
    verifiedAt: '2026-12-01T00:00:00.000Z',
  };
}

/** Verified payloads held in memory: the main payload and OEM payloads of some releases. */
export function memoryPayloads(): UpdatePayloadLookup & {
  add(board: string, version: string, name: string, bytes?: Uint8Array): UpdatePayloadRecord;
  reads: number;
} {
  const records = new Map<string, UpdatePayloadRecord[]>();
  const lookup = {
    reads: 0,
    add(board: string, version: string, name: string, bytes: Uint8Array = randomBytes(4096)) {
      const record = payloadRecord(board, version, name, bytes);
      const list = records.get(`${board}/${version}`) ?? [];
      list.push(record);
      list.sort((a, b) => Number(b.name === MAIN_UPDATE_PAYLOAD) - Number(a.name === MAIN_UPDATE_PAYLOAD));
      records.set(`${board}/${version}`, list);
      return record;
    },
    async payloadsFor(board: string, version: string) {
      lookup.reads++;
      return records.get(`${board}/${version}`) ?? [];
    },
  };
  return lookup;
}

/** Update groups in memory, with the same per-period admission rule as the ledger part. */
export function memoryGroups(): UpdateGroupLedger {
  const groups = new Map<string, UpdateGroup>();
  const periods = new Map<string, Set<string>>();
  return {
    async putGroup(group) {
      const created = !groups.has(group.name);
      groups.set(group.name, group);
      return created;
    },
    async getGroup(name) {
      return groups.get(name);
    },
    async listGroups() {
      return [...groups.values()].sort((a, b) => a.name.localeCompare(b.name));
    },
    async deleteGroup(name) {
      return groups.delete(name);
    },
    async admitInPeriod(group, start, machineId, max) {
      const key = `${group}\n${start}`;
      const admitted = periods.get(key) ?? new Set<string>();
      periods.set(key, admitted);
      if (admitted.has(machineId)) return true;
      if (admitted.size >= max) return false;
      admitted.add(machineId);
      return true;
    },
  };
}

/** Keeps every check-in it is told about. */
export function memoryRecorder(): FleetRecorder & { checkIns: FleetCheckIn[] } {
  const checkIns: FleetCheckIn[] = [];
  return { checkIns, record: (checkIn) => checkIns.push(checkIn) };
}

export interface CheckOptions {
  appId?: string;
  version?: string;
  track?: string;
  board?: string;
  machineId?: string;
  oem?: string;
  events?: string;
  updateCheck?: boolean;
}

/**
 * An update check in update_engine's shape (request and os elements, the app's attributes in the order
 * the client writes them, `<ping>`, `<updatecheck>`, and events).
 */
export function omahaCheck(options: CheckOptions = {}): string {
  const oem = options.oem ?? 'qemu';
  return `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
  <os version="Chateau" platform="CoreOS" sp="${options.version ?? '4081.2.0'}_x86_64"></os>
  <app appid="${options.appId ?? `{${flatcarAppId}}`}" version="${options.version ?? '4081.2.0'}" track="${options.track ?? 'stable'}" bootid="{4b1a3c5e-0d7f-4e2a-9b8c-1f2e3d4c5b6a}" oem="${oem}" oemversion="0.2.0" alephversion="3975.2.0" machineid="${options.machineId ?? '0f1e2d3c4b5a69788796a5b4c3d2e1f0'}" lang="en-US" board="${options.board ?? 'amd64-usr'}" hardware_class="" delta_okay="false" >
    <ping active="1"></ping>
    ${options.updateCheck === false ? '' : '<updatecheck></updatecheck>'}
    ${options.events ?? ''}
  </app>
</request>
`;
}

/** The sources a config with these top-level channels means: one source, `flatcar`, at the mirror's root. */
export function channelSources(...channels: string[]): SourceConfig[] {
  return parseConfig({ channels: channels.map((name) => ({ name })) }).sources;
}
