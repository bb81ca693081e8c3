'use strict';
/**
 * DynamoDB's TransactWriteItems for dynalite, which has none, so the single-machine ledger (and the
 * tests) write batches with the same all-or-nothing semantics as DynamoDB.
 *
 * `createDynalite(options)` is `dynalite(options)` with one more operation: a request whose target is
 * `DynamoDB_20120810.TransactWriteItems` is answered here, every other request by dynalite as before. Its
 * store carries the changes of `dynalite-store.cjs`, and it gives a caller in its thread `readItem` and
 * `writeItems` (GetItem and BatchWriteItem without HTTP).
 *
 * How it stays atomic:
 * - Isolation: it takes dynalite's own per-item locks (the ones PutItem, UpdateItem and DeleteItem hold
 *   while they read, check and write) on every key of the transaction at once, so no plain write of those
 *   items interleaves with it. Locks are queued in order of request, and a multi-key request queues on all
 *   its keys in one step, so two transactions cannot deadlock.
 * - All or nothing: every condition is checked first; if one fails nothing is written and the answer is
 *   `TransactionCanceledException` with one `CancellationReasons` entry per item, as DynamoDB answers, so
 *   the AWS SDK raises the same exception class. Otherwise the items and their index entries go to LevelDB
 *   in one write batch, which LevelDB applies whole or not at all, even if the process dies during it.
 * - Idempotency: a repeat of a successful request with the same `ClientRequestToken` within ten minutes
 *   succeeds without writing again; the same token with other parameters is refused
 *   (`IdempotentParameterMismatchException`), as DynamoDB does.
 *
 * Supported items: Put, Delete and ConditionCheck (with `ConditionExpression`, attribute names and values,
 * and `ReturnValuesOnConditionCheckFailure`). Update is refused with a ValidationException that says so:
 * dynalite keeps its update evaluator private, and cldist writes whole items.
 *
 * It reaches into dynalite 4.0.0's store (the key prefixes of its item and index sub-databases), so the
 * package version is pinned; the contract tests read the written items and index entries back through
 * dynalite's own GetItem and Query, which fail if a new version lays them out differently.
 */
const Module = require('node:module');

const dynaliteRequire = Module.createRequire(require.resolve('dynalite'));
const dynalite = dynaliteRequire('./index.js');
const db = dynaliteRequire('./db/index.js');
const validations = dynaliteRequire('./validations/index.js');
const { marshall } = require('@aws-sdk/util-dynamodb');
const { compactWhenSettled } = require('./ledger-compaction.cjs');
const { AwsError, transactionHandler } = require('./dynalite-transaction-http.cjs');
const { encodeItem, itemReader, patchStore } = require('./dynalite-store.cjs');

const target = 'DynamoDB_20120810.TransactWriteItems';
const maxItems = 100;

const itemValidations = {
  Put: dynaliteRequire('./validations/putItem.js'),
  Delete: dynaliteRequire('./validations/deleteItem.js'),
  ConditionCheck: dynaliteRequire('./validations/deleteItem.js'),
};

function validationError(message) {
  return new AwsError('com.amazon.coral.validate#ValidationException', message);
}

/** One transaction item checked as dynalite checks the single-item request of the same kind. */
function checkItem(entry, index, store) {
  const kinds = Object.keys(entry ?? {}).filter((kind) => entry[kind] != null);
  if (kinds.length !== 1) {
    throw validationError(
      `TransactItems[${index}] must hold exactly one of Put, Delete or ConditionCheck (got ${kinds.join(', ') || 'none'})`,
    );
  }
  const kind = kinds[0];
  if (kind === 'Update') {
    throw validationError(
      `TransactItems[${index}]: Update is not supported by this dynalite stand-in; write the whole item with Put`,
    );
  }
  const rules = itemValidations[kind];
  if (rules === undefined) throw validationError(`TransactItems[${index}]: unknown operation ${kind}`);
  const given = entry[kind];
  const onFailure = given.ReturnValuesOnConditionCheckFailure;
  if (onFailure != null && onFailure !== 'ALL_OLD' && onFailure !== 'NONE') {
    throw validationError(
      `TransactItems[${index}].${kind}.ReturnValuesOnConditionCheckFailure must be ALL_OLD or NONE`,
    );
  }
  for (const legacy of ['Expected', 'ConditionalOperator', 'ReturnValues']) {
    if (given[legacy] != null)
      throw validationError(`TransactItems[${index}].${kind}.${legacy} is not part of TransactWriteItems`);
  }
  if (kind === 'ConditionCheck' && given.ConditionExpression == null) {
    throw validationError(`TransactItems[${index}].ConditionCheck needs a ConditionExpression`);
  }
  const data = validations.checkTypes({ ...given }, rules.types);
  validations.checkValidations(data, rules.types, rules.custom, store);
  return { kind, data, returnOld: onFailure === 'ALL_OLD' };
}

/** Every item's shape, as dynalite checks the single-item request of the same kind. */
function checkShapes(request, store) {
  const items = request.TransactItems;
  if (!Array.isArray(items) || items.length === 0) {
    throw validationError('TransactItems must hold between 1 and 100 items');
  }
  if (items.length > maxItems) {
    throw validationError(
      `1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${maxItems}`,
    );
  }
  return items.map((entry, index) => checkItem(entry, index, store));
}

/** Each item with its table and store key; no item twice. */
function withKeys(items, tables) {
  const seen = new Set();
  return items.map((item) => {
    const table = tables.get(item.data.TableName);
    const invalid =
      item.kind === 'Put' ? db.validateItem(item.data.Item, table) : db.validateKey(item.data.Key, table);
    if (invalid != null) throw invalid;
    const key = db.createKey(item.kind === 'Put' ? item.data.Item : item.data.Key, table);
    const unique = `${item.data.TableName}\u0000${key}`;
    if (seen.has(unique))
      throw validationError('Transaction request cannot include multiple operations on one item');
    seen.add(unique);
    return { ...item, table, key };
  });
}

function loadTables(store, names) {
  return Promise.all(
    [...new Set(names)].map(
      (name) =>
        new Promise((resolve, reject) => {
          store.getTable(name, (error, table) => (error ? reject(error) : resolve([name, table])));
        }),
    ),
  ).then((entries) => new Map(entries));
}

/** Locks every key, table by table in name order; resolves with the function that releases them all. */
async function lockAll(store, items) {
  const byTable = new Map();
  for (const item of items) {
    const keys = byTable.get(item.data.TableName) ?? [];
    keys.push(item.key);
    byTable.set(item.data.TableName, keys);
  }
  const releases = [];
  for (const name of [...byTable.keys()].sort()) {
    const lock = store.getItemDb(name).lock;
    releases.push(
      await new Promise((resolve) => lock(byTable.get(name), (release) => resolve(release(() => {})))),
    );
  }
  return () => {
    for (const release of releases) release();
  };
}

function getItem(store, name, key) {
  return new Promise((resolve, reject) => {
    store.getItemDb(name).get(key, (error, item) => {
      if (error && error.name !== 'NotFoundError' && error.code !== 'LEVEL_NOT_FOUND') return reject(error);
      resolve(error ? undefined : item);
    });
  });
}

/** The LevelDB operations of one item: its own key and its index entries (deletes before puts). */
function batchOperations(item, existing) {
  const name = item.data.TableName;
  const next = item.kind === 'Put' ? item.data.Item : null;
  const deletes = [];
  const puts = [];
  for (const indexType of ['Local', 'Global']) {
    const indexes = item.table[`${indexType}SecondaryIndexes`] || [];
    const actions = db.getIndexActions(indexes, existing, next, item.table);
    const prefix = (index) => `index-${indexType.toLowerCase()}~${name}~${index}~`;
    for (const action of actions.deletes)
      deletes.push({ type: 'del', key: prefix(action.index) + action.key });
    for (const action of actions.puts) {
      puts.push({ type: 'put', key: prefix(action.index) + action.key, value: action.item });
    }
  }
  const own =
    next === null
      ? { type: 'del', key: `item-${name}~${item.key}` }
      : { type: 'put', key: `item-${name}~${item.key}`, value: next };
  return { deletes, puts: [...puts, own] };
}

function writeBatch(store, operations) {
  return new Promise((resolve, reject) =>
    store.db.batch(operations, (error) => (error ? reject(error) : resolve())),
  );
}

function cancelled(reasons) {
  const codes = reasons.map((reason) => reason.Code).join(', ');
  return new AwsError('com.amazonaws.dynamodb.v20120810#TransactionCanceledException', undefined, 400, {
    Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes}]`,
    CancellationReasons: reasons,
  });
}

async function transact(store, request) {
  const shapes = checkShapes(request, store);
  await writeTogether(store, shapes, (items, existing) => {
    const reasons = items.map((item, i) => {
      if (db.checkConditional(item.data, existing[i]) == null) return { Code: 'None' };
      return {
        Code: 'ConditionalCheckFailed',
        Message: 'The conditional request failed',
        ...(item.returnOld && existing[i] ? { Item: existing[i] } : {}),
      };
    });
    if (reasons.some((reason) => reason.Code !== 'None')) throw cancelled(reasons);
  });
}

/** Whether a table has secondary indexes, whose entries a write must replace along with the item. */
const indexed = (table) =>
  (table.LocalSecondaryIndexes?.length ?? 0) + (table.GlobalSecondaryIndexes?.length ?? 0) > 0;

/**
 * Items (Put, Delete or ConditionCheck, each with its `data` as in a single-item request) written in one
 * LevelDB batch under dynalite's locks on all their keys, after `check(items, existing)`, if given, has
 * seen every item's current state and not thrown. An item is read first only when something needs what
 * it replaces: the check, or the index entries of its table. For a key never written that read costs
 * LevelDB a look in every level.
 */
async function writeTogether(store, shapes, check) {
  const tables = await loadTables(
    store,
    shapes.map((item) => item.data.TableName),
  );
  const items = withKeys(shapes, tables);
  const release = await lockAll(store, items);
  try {
    const existing = await Promise.all(
      items.map((item) =>
        check !== undefined || indexed(item.table)
          ? getItem(store, item.data.TableName, item.key)
          : undefined,
      ),
    );
    check?.(items, existing);
    const deletes = [];
    const puts = [];
    items.forEach((item, i) => {
      if (item.kind === 'ConditionCheck') return;
      const operations = batchOperations(item, existing[i]);
      deletes.push(...operations.deletes);
      puts.push(...operations.puts);
    });
    if (deletes.length + puts.length > 0) await writeBatch(store, [...deletes, ...puts]);
  } finally {
    release();
  }
}

/**
 * BatchWriteItem for a caller in the same thread, without the HTTP request: dynalite's item checks,
 * locks and index entries, as a transaction writes them, so the batch lands in one LevelDB write instead
 * of one per item (all or nothing, which BatchWriteItem allows). Requests carry native values, as the
 * document client's do (undefined attributes left out); none comes back unprocessed.
 */
function itemWriter(store) {
  const options = { removeUndefinedValues: true };
  const toShape = (table, request) =>
    request.PutRequest !== undefined
      ? {
          kind: 'Put',
          data: { TableName: table, Item: encodeItem(marshall(request.PutRequest.Item, options)) },
        }
      : {
          kind: 'Delete',
          data: { TableName: table, Key: encodeItem(marshall(request.DeleteRequest.Key, options)) },
        };
  return (table, requests) =>
    writeTogether(
      store,
      requests.map((request) => toShape(table, request)),
    );
}

/**
 * `dynalite(options)`, answering TransactWriteItems too, with `readItem` for a caller in its thread;
 * `options.level` is passed to LevelDB when the store opens, and `options.compaction` (see
 * `compactWhenSettled`) compacts it after a large load.
 */
function createDynalite(options) {
  const create = db.create;
  let store;
  db.create = (...args) => {
    store = create(...args);
    return store;
  };
  let server;
  try {
    server = dynalite(options);
  } finally {
    db.create = create;
  }
  if (store === undefined) throw new Error('dynalite did not create its store through db.create');
  patchStore(store, options?.level);
  const stopCompactions =
    options?.compaction === undefined ? () => {} : compactWhenSettled(store.db, options.compaction);
  server.once('close', stopCompactions);
  const [dynaliteHandler] = server.listeners('request');
  const transactions = transactionHandler((request) => transact(store, request));
  server.removeAllListeners('request');
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.headers['x-amz-target'] === target) transactions(req, res);
    else dynaliteHandler(req, res);
  });
  server.readItem = itemReader(store);
  server.writeItems = itemWriter(store);
  return server;
}

module.exports = { createDynalite };
