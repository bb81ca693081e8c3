/** The `instances` section of the config: where instance config bodies live, and the caches' byte budgets. */
import * as z from 'zod';

const MiB = 1024 * 1024;

/** Largest inline limit: a compressed body, its params and the GSI copy must stay far from DynamoDB's 400 KB item limit. */
export const maxInlineBodyBytes = 128 * 1024;

/** Bytes each in-memory cache of the instance service may hold; least recently used entries go first. */
const cacheBytesSchema = z
  .strictObject({
    /** Instance records (single machine only: Lambda keeps no record cache), inline bodies included. */
    records: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * MiB)
      .default(32 * MiB),
    /** Which instance holds each source address (single machine only). */
    addresses: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * MiB)
      .default(8 * MiB),
    /** Bodies read from the config store (larger than `inlineBodyMaxBytes`). */
    bodies: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * MiB)
      .default(32 * MiB),
    /** Boot selections, profiles and selector groups (single machine), shared between the three. */
    boot: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * MiB)
      .default(8 * MiB),
    /** Served Ignition configs wrapped with `platform.baseIgnition`, per listener that serves configs. */
    merged: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * MiB)
      .default(16 * MiB),
  })
  .default({ records: 32 * MiB, addresses: 8 * MiB, bodies: 32 * MiB, boot: 8 * MiB, merged: 16 * MiB });

export const instancesSchema = z
  .strictObject({
    /**
     * A config body up to this many bytes (before compression) is stored raw-deflated in its ledger item,
     * so a fetch costs no config-store read; larger ones go to the config store. 0 stores every body there.
     */
    inlineBodyMaxBytes: z
      .number()
      .int()
      .min(0)
      .max(maxInlineBodyBytes, {
        message: `at most ${maxInlineBodyBytes} (128 KiB); larger bodies belong in the config store`,
      })
      .default(32 * 1024),
    cacheBytes: cacheBytesSchema,
  })
  .default({
    inlineBodyMaxBytes: 32 * 1024,
    cacheBytes: { records: 32 * MiB, addresses: 8 * MiB, bodies: 32 * MiB, boot: 8 * MiB, merged: 16 * MiB },
  });
