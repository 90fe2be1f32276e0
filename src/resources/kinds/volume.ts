import { z } from 'zod';
import { engineObjectName, stringMap } from '../common.js';

export const volumeName = engineObjectName;

export const reclaimPolicy = z.enum(['Retain', 'Delete']);

/** A Docker volume, e.g. the seed's NFS `nfsvolume` (driver local, `type=nfs4`). */
export const volumeSpec = z.strictObject({
  /** Default `local`. */
  driver: z.string().min(1).optional(),
  /** `type`, `o` and `device` for the local driver's NFS or bind forms. */
  driverOpts: stringMap.optional(),
  /** What deleting the resource does to the volume: `Retain` (the default) keeps it, `Delete` removes it. */
  reclaimPolicy: reclaimPolicy.optional(),
});

export type VolumeSpec = z.infer<typeof volumeSpec>;
