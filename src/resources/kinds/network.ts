import { z } from 'zod';
import { stringMap, swarmObjectName } from '../common.js';

export const networkName = swarmObjectName;

const ipamConfig = z.strictObject({
  subnet: z.string().min(1).optional(),
  ipRange: z.string().min(1).optional(),
  gateway: z.string().min(1).optional(),
});

/** A Docker network. Everything but labels is immutable in Docker, so drift there means a recreate. */
export const networkSpec = z.strictObject({
  /** `overlay` (the default) for Swarm services, `bridge` for single-host use. */
  driver: z.string().min(1).optional(),
  attachable: z.boolean().optional(),
  internal: z.boolean().optional(),
  /** Overlay encryption (the `encrypted` driver option). */
  encrypted: z.boolean().optional(),
  driverOpts: stringMap.optional(),
  ipam: z
    .strictObject({
      driver: z.string().min(1).optional(),
      config: z.array(ipamConfig).optional(),
    })
    .optional(),
});

export type NetworkSpec = z.infer<typeof networkSpec>;
