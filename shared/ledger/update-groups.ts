import type { UpdateGroup, UpdateGroupStore } from '../update/groups.ts';
import { type Item, type LedgerTable, partitionKeyName, strip } from './access.ts';
import {
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerKeySchema,
  ledgerKindAttribute,
  ledgerTtlAttribute,
} from './table.ts';

/** Update groups, and the per-period admissions of groups with a per-period cap, on the ledger table. */
export type UpdateGroupLedger = UpdateGroupStore;

function groupItem(group: UpdateGroup): Item {
  const record: Item = {};
  for (const [key, value] of Object.entries(group)) if (value !== undefined) record[key] = value;
  return {
    ...record,
    ...ledgerItems.updateGroup(group.name),
    ...ledgerIndexEntry(ledgerIndex.updateGroups, group.name),
    [ledgerKindAttribute]: 'update-group',
  };
}

export function updateGroupLedger(table: LedgerTable): UpdateGroupLedger {
  return {
    async putGroup(group) {
      const created = await table.put('put update group', groupItem(group), {
        condition: 'attribute_not_exists(#pk)',
        names: partitionKeyName,
      });
      if (created) return true;
      await table.put('put update group', groupItem(group));
      return false;
    },

    async getGroup(name) {
      const item = await table.get('get update group', ledgerItems.updateGroup(name));
      return item === undefined ? undefined : strip<UpdateGroup>(item);
    },

    async listGroups() {
      const k = ledgerKeySchema;
      const items = await table.query('list update groups', {
        IndexName: k.gsi1Name,
        KeyConditionExpression: '#g1pk = :g1pk',
        ExpressionAttributeNames: { '#g1pk': k.gsi1PartitionKey },
        ExpressionAttributeValues: { ':g1pk': ledgerIndex.updateGroups },
      });
      return items.map((item) => strip<UpdateGroup>(item));
    },

    deleteGroup(name) {
      return table.delete('delete update group', ledgerItems.updateGroup(name), {
        condition: 'attribute_exists(#pk)',
        names: partitionKeyName,
      });
    },

    admitInPeriod(group, periodStart, machineId, max, expiresAt) {
      return table.update('admit in update period', ledgerItems.updatePeriod(group, periodStart), {
        set: ['#kind = :kind', '#ttl = :ttl'],
        add: ['machines :machine'],
        condition: 'attribute_not_exists(machines) OR contains(machines, :id) OR size(machines) < :max',
        names: { '#kind': ledgerKindAttribute, '#ttl': ledgerTtlAttribute },
        values: {
          ':kind': 'update-period',
          ':ttl': Math.ceil(expiresAt.getTime() / 1000),
          ':machine': new Set([machineId]),
          ':id': machineId,
          ':max': max,
        },
      });
    },
  };
}
