import type { UpdateGroup, UpdateGroupStore } from '../update/groups.ts';
import { type Item, type LedgerTable, partitionKeyName, strip } from './access.ts';
import {
  ledgerIndex,
  ledgerIndexEntry,
  ledgerItems,
  ledgerKey,
  ledgerKeySchema,
  ledgerKindAttribute,
  ledgerTtlAttribute,
  updatePeriodSortPrefix,
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

/** At most this many periods are removed at once; a long-idle group sheds the rest at its next period. */
const maxPeriodsDropped = 25;

/** Removes the group's period items up to the sort key `upTo`, except `keep`. */
async function dropPeriods(table: LedgerTable, group: string, upTo: string, keep?: string): Promise<void> {
  const k = ledgerKeySchema;
  const items = await table.query(
    'list earlier update periods',
    {
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeNames: { '#pk': k.partitionKey, '#sk': k.sortKey },
      ExpressionAttributeValues: {
        ':pk': ledgerItems.updateGroup(group)[k.partitionKey],
        ':from': updatePeriodSortPrefix,
        ':to': upTo,
      },
    },
    maxPeriodsDropped + 1,
  );
  for (const item of items) {
    const key = ledgerKey(String(item[k.partitionKey]), String(item[k.sortKey]));
    if (key[k.sortKey] !== keep) await table.delete('drop update period', key);
  }
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

    async deleteGroup(name) {
      const deleted = await table.delete('delete update group', ledgerItems.updateGroup(name), {
        condition: 'attribute_exists(#pk)',
        names: partitionKeyName,
      });
      // '~' sorts after every ISO time, so this reaches every period of the group.
      await dropPeriods(table, name, `${updatePeriodSortPrefix}~`);
      return deleted;
    },

    async admitInPeriod(group, periodStart, machineId, max, expiresAt) {
      const item = await table.updateReturning(
        'admit in update period',
        ledgerItems.updatePeriod(group, periodStart),
        {
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
        },
      );
      if (item === undefined) return false;
      // The period's first admission removes the group's earlier periods, which DynamoDB's TTL would
      // remove on AWS but nothing removes on one machine.
      const machines = item.machines;
      if (machines instanceof Set && machines.size === 1) {
        const current = ledgerItems.updatePeriod(group, periodStart)[ledgerKeySchema.sortKey];
        await dropPeriods(table, group, current ?? '', current);
      }
      return true;
    },
  };
}
