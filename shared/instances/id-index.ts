import { createHmac, randomBytes } from 'node:crypto';

/**
 * The set of instance ids that have a record, kept as 64-bit keyed fingerprints in one typed array (open
 * addressing, linear probing), so a million instances cost 16 to 32 bytes each instead of a string and a
 * map entry. It answers "certainly absent" or "maybe present": a fingerprint collision (about one in 2^64
 * per pair) only costs a ledger read, never a wrong answer. The key is random per process, so nobody can
 * choose ids that collide or cluster in the table.
 */
export interface IdIndex {
  has(id: string): boolean;
  add(id: string): void;
  remove(id: string): void;
  readonly size: number;
  /** Bytes held by the table, for the docs' cost-per-instance figure and for a status line. */
  readonly bytes: number;
}

const empty = 0;
const tombstoneLow = 1;

export function createIdIndex(initialCapacity = 1024): IdIndex {
  const key = randomBytes(32);
  let capacity = 1;
  while (capacity < initialCapacity * 2) capacity *= 2;
  /** Pairs (high, low); high 0 is never a fingerprint, so (0, 0) is empty and (0, 1) a removed slot. */
  let slots = new Uint32Array(capacity * 2);
  let size = 0;
  let used = 0;

  const fingerprint = (id: string): [number, number] => {
    const digest = createHmac('sha256', key).update(id, 'utf8').digest();
    return [digest.readUInt32LE(0) || 1, digest.readUInt32LE(4)];
  };

  /** The slot holding the fingerprint, or -1 and the first free slot it could go in. */
  const find = (high: number, low: number): { at: number; free: number } => {
    const mask = capacity - 1;
    let free = -1;
    for (let i = low & mask, probes = 0; probes < capacity; i = (i + 1) & mask, probes++) {
      const h = slots[i * 2] ?? empty;
      const l = slots[i * 2 + 1] ?? empty;
      if (h === high && l === low) return { at: i, free };
      if (h === empty && l === empty) return { at: -1, free: free === -1 ? i : free };
      if (free === -1 && h === empty) free = i;
    }
    return { at: -1, free };
  };

  const grow = () => {
    const old = slots;
    const oldCapacity = capacity;
    if (size * 4 >= capacity) capacity *= 2;
    slots = new Uint32Array(capacity * 2);
    used = 0;
    for (let i = 0; i < oldCapacity; i++) {
      const h = old[i * 2] ?? empty;
      if (h === empty) continue;
      const l = old[i * 2 + 1] ?? empty;
      const { free } = find(h, l);
      slots[free * 2] = h;
      slots[free * 2 + 1] = l;
      used++;
    }
  };

  return {
    has(id) {
      const [high, low] = fingerprint(id);
      return find(high, low).at !== -1;
    },
    add(id) {
      const [high, low] = fingerprint(id);
      const { at, free } = find(high, low);
      if (at !== -1) return;
      const reused = (slots[free * 2 + 1] ?? empty) === tombstoneLow;
      slots[free * 2] = high;
      slots[free * 2 + 1] = low;
      size++;
      if (!reused) used++;
      if (used * 2 > capacity) grow();
    },
    remove(id) {
      const [high, low] = fingerprint(id);
      const { at } = find(high, low);
      if (at === -1) return;
      slots[at * 2] = empty;
      slots[at * 2 + 1] = tombstoneLow;
      size--;
    },
    get size() {
      return size;
    },
    get bytes() {
      return slots.byteLength;
    },
  };
}
