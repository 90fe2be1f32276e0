/** Pieces that Services and Containers share: mounts, network attachments, ports, resources. */
import { z } from 'zod';
import { absolutePath, byteSize, cpuCount, engineObjectName, stringMap, swarmObjectName } from '../common.js';

export const mount = z
  .strictObject({
    /** `volume` (the default), `bind` or `tmpfs`. */
    type: z.enum(['volume', 'bind', 'tmpfs']).optional(),
    /** Volume name for `volume`, host path for `bind`, absent for `tmpfs`. */
    source: z.string().min(1).optional(),
    target: absolutePath,
    readOnly: z.boolean().optional(),
    volume: z
      .strictObject({
        noCopy: z.boolean().optional(),
        driver: z.string().min(1).optional(),
        driverOpts: stringMap.optional(),
        labels: stringMap.optional(),
      })
      .optional(),
    bind: z
      .strictObject({
        propagation: z.enum(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']).optional(),
      })
      .optional(),
    tmpfs: z.strictObject({ size: byteSize.optional(), mode: z.number().int().optional() }).optional(),
  })
  .superRefine((m, ctx) => {
    const type = m.type ?? 'volume';
    if (type === 'bind') {
      if (m.source === undefined)
        ctx.addIssue({ code: 'custom', path: ['source'], message: 'a bind mount needs source' });
      else if (!m.source.startsWith('/'))
        ctx.addIssue({
          code: 'custom',
          path: ['source'],
          message: 'a bind mount source must be an absolute path',
        });
    }
    if (type === 'volume' && m.source !== undefined && !engineObjectName.safeParse(m.source).success) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'must be a valid volume name' });
    }
    if (type === 'tmpfs' && m.source !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'a tmpfs mount takes no source' });
    }
  });

export type Mount = z.infer<typeof mount>;

/** A network by name, or with aliases. */
export const networkAttachment = z.union([
  swarmObjectName,
  z.strictObject({ name: swarmObjectName, aliases: z.array(z.string().min(1)).optional() }),
]);

export type NetworkAttachment = z.infer<typeof networkAttachment>;

export const protocol = z.enum(['tcp', 'udp', 'sctp']);

export const resourceLimits = z.strictObject({
  cpus: cpuCount.optional(),
  memory: byteSize.optional(),
  pids: z.number().int().min(1).optional(),
});

export const resourceReservations = z.strictObject({
  cpus: cpuCount.optional(),
  memory: byteSize.optional(),
});
