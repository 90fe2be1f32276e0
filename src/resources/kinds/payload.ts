import { z } from 'zod';
import { swarmObjectName } from '../common.js';

/** Config and secret names leave room for the `-<hash8>` suffix of the immutable object that realises them. */
export const payloadName = swarmObjectName.max(
  54,
  'must be at most 54 characters (room for the -<hash8> suffix)',
);

/** Swarm caps configs and secrets at 500 KiB. */
export const MAX_PAYLOAD_BYTES = 500 * 1024;

/**
 * The body of a Config or Secret. `file` names a file next to the manifest; `apply` reads it and
 * stores its content as `data`, so a stored record always has `data`.
 */
export const payloadSpec = z
  .strictObject({
    data: z
      .string()
      .refine((d) => Buffer.byteLength(d) <= MAX_PAYLOAD_BYTES, 'must be at most 500 KiB (Swarm limit)')
      .optional(),
    file: z.string().min(1).optional(),
  })
  .refine((s) => (s.data === undefined) !== (s.file === undefined), {
    message: 'set exactly one of data and file',
  });

export type PayloadSpec = z.infer<typeof payloadSpec>;
