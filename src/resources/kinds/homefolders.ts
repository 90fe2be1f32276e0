import { z } from 'zod';
import { absolutePath, byteSize, stringMap, swarmObjectName } from '../common.js';

export const homeFoldersName = swarmObjectName;

/** The placeholder in volume templates that becomes the user's folder name. */
export const USERNAME_PLACEHOLDER = '{username}';

/**
 * The per-user folders on one NFS export, their quotas, and the per-user Docker volume that
 * mounts them. Replaces the seed's forked spawner and incrond script.
 */
export const homeFoldersSpec = z.strictObject({
  /** The export as mounted inside the controller, e.g. /var/nfs. */
  root: absolutePath,
  /** How a username becomes a folder name: `plain`, `md5` (the seed's SwarmSpawner) or `escaped` (dockerspawner). */
  naming: z.enum(['plain', 'md5', 'escaped']).optional(),
  owner: z
    .strictObject({
      uid: z.number().int().min(0),
      gid: z.number().int().min(0),
    })
    .optional(),
  /** Octal, as a string so YAML does not read it as decimal: "0770". */
  mode: z
    .string({ error: 'must be an octal string such as "0770" (quote it in YAML)' })
    .regex(/^0?[0-7]{3,4}$/, 'must be an octal string such as "0770"')
    .optional(),
  /** Write `<root>/<folder>_email.txt` with the user's e-mail, as the seed does. */
  emailFile: z.boolean().optional(),
  quota: z
    .strictObject({
      driver: z.enum(['xfs', 'none']),
      /** Default per-user hard block limit; `0` means no limit. */
      default: byteSize.optional(),
    })
    .optional(),
  volume: z
    .strictObject({
      /** e.g. `jupyterhub-user-{username}`. */
      name: z
        .string()
        .min(1)
        .refine((n) => n.includes(USERNAME_PLACEHOLDER), `must contain ${USERNAME_PLACEHOLDER}`),
      driver: z.string().min(1).optional(),
      driverOpts: stringMap.optional(),
    })
    .optional(),
  /** What deleting a User does to its folder: `Retain` (the default) or `Archive` to `<root>/.archive/`. */
  reclaimPolicy: z.enum(['Retain', 'Archive']).optional(),
});

export type HomeFoldersSpec = z.infer<typeof homeFoldersSpec>;
