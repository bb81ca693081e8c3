'use strict';
/**
 * dynalite's store as `cldist serve` runs it on the ledger's thread, changed where dynalite 4.0.0 costs
 * the single-machine ledger its memory or its speed: queries close their LevelDB iterators, reads are
 * LevelDB's synchronous get, LevelDB opens with options of ours, and a caller in the same thread reads an
 * item without HTTP. Each reaches into the store's internals, which is why the dynalite version is pinned;
 * `test/contract/ledger-stand-in.test.ts` checks what each one promises.
 */
const Module = require('node:module');
const { Readable } = require('node:stream');
const { marshall, unmarshall } = require('@aws-sdk/util-dynamodb');

const dynaliteRequire = Module.createRequire(require.resolve('dynalite'));
const db = dynaliteRequire('./db/index.js');

/** A binary attribute as dynalite keeps it (base64) turned into bytes of its own, as the SDK gives them. */
function toBytes(value) {
  return new Uint8Array(Buffer.from(value, 'base64'));
}

const toBase64 = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

/** An attribute value with each binary value in it, at any depth, passed through `convert`. */
function mapBinary(value, convert) {
  if (value.B !== undefined) return { B: convert(value.B) };
  if (value.BS !== undefined) return { BS: value.BS.map(convert) };
  if (value.M !== undefined) return { M: mapItemBinary(value.M, convert) };
  if (value.L !== undefined) return { L: value.L.map((inner) => mapBinary(inner, convert)) };
  return value;
}

function mapItemBinary(item, convert) {
  const out = {};
  for (const [name, value] of Object.entries(item)) out[name] = mapBinary(value, convert);
  return out;
}

/** An item in dynalite's stored form (binary as base64) with its binary values as bytes, as the SDK gives them. */
const decodeItem = (item) => mapItemBinary(item, toBytes);

/** The other way: binary values as dynalite keeps them, base64, as they arrive over HTTP. */
const encodeItem = (item) => mapItemBinary(item, toBase64);

/**
 * GetItem for a caller in the same thread: the item dynalite's GetItem would answer (its key checks, its
 * store), without the HTTP request, the signature and the JSON it would cost on both sides. The read is
 * LevelDB's synchronous one: on the ledger's own thread it is shorter than a round trip through libuv's
 * pool. A table's key schema cannot change, so each table's definition is read once. Key and item are
 * native values, as the SDK's document client takes and gives them (binary as bytes of their own, so a
 * copy sent to another thread carries only its own bytes).
 */
function itemReader(store) {
  const tables = new Map();
  const tableOf = (name) =>
    tables.get(name) ??
    new Promise((resolve, reject) => {
      store.getTable(name, false, (error, table) => {
        if (error) return reject(error);
        if (table.TableStatus === 'ACTIVE') tables.set(name, table);
        resolve(table);
      });
    });
  return async (name, key) => {
    const table = await tableOf(name);
    const dynamoKey = encodeItem(marshall(key));
    const invalid = db.validateKey(dynamoKey, table);
    if (invalid != null) throw invalid;
    const stored = `item-${name}~${db.createKey(dynamoKey, table)}`;
    const item = store.db.status === 'open' ? store.db.getSync(stored) : await store.db.get(stored);
    return item === undefined ? undefined : unmarshall(decodeItem(item));
  };
}

/**
 * A stream over a LevelDB iterator that closes the iterator when the stream ends or is destroyed.
 * dynalite's own streams close theirs through `iterator.return()`, which abstract-level iterators do not
 * have, so every Query and Scan left its iterator open until the database closed. An open iterator pins
 * the LevelDB version it started on: the table files that compaction replaces are never deleted and stay
 * mapped, so the ledger's disk and the process's memory grew with every query.
 */
function closingStream(iterator) {
  return new Readable({
    objectMode: true,
    read() {
      iterator.next().then(
        (value) => this.push(value === undefined ? null : value),
        (error) => this.destroy(error),
      );
    },
    destroy(error, callback) {
      iterator.close().then(
        () => callback(error),
        (closeError) => callback(error ?? closeError),
      );
    },
  });
}

/**
 * dynalite's callback `get` as a synchronous LevelDB read answered on the next turn, as before: its own
 * goes through a promise and libuv's thread pool for every read (the table definition included, on every
 * request), which costs the ledger's thread more than the read itself. The promise form, and every read
 * while the database is not open, are left as they were.
 */
function readSynchronously(levelDb) {
  const get = levelDb.get;
  levelDb.get = function (key, callback) {
    // Until LevelDB is open (it opens after the first turn), only the deferred read can wait for it.
    if (typeof callback !== 'function' || levelDb.status !== 'open') return get.call(this, key, callback);
    let value;
    try {
      value = levelDb.getSync(key);
    } catch (error) {
      return setImmediate(callback, error);
    }
    setImmediate(callback, null, value);
  };
}

function closeIteratorsOf(levelDb) {
  levelDb.createValueStream = (options) => closingStream(levelDb.values(options));
  levelDb.createKeyStream = (options) => closingStream(levelDb.keys(options));
}

/**
 * LevelDB's own options for the store (classic-level's `maxOpenFiles`, `cacheSize`…), given to it when
 * dynalite opens it, which is after this turn of the event loop: dynalite passes none of its own.
 */
function openWith(levelDb, levelOptions) {
  const open = levelDb._open.bind(levelDb);
  levelDb._open = (openOptions) => open({ ...openOptions, ...levelOptions });
}

/** The store's changes that hold for every caller: closed iterators, synchronous reads, open options. */
function patchStore(store, levelOptions) {
  closeIteratorsOf(store.db);
  readSynchronously(store.db);
  if (levelOptions !== undefined) openWith(store.db, levelOptions);
}

module.exports = { patchStore, itemReader, encodeItem };
