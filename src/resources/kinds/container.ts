import { z } from 'zod';
import {
  capabilityList,
  commandList,
  engineObjectName,
  environment,
  healthcheck,
  port,
  stringMap,
} from '../common.js';
import { RESERVED_LABEL_PREFIX } from '../metadata.js';
import { mount, networkAttachment, protocol, resourceLimits } from './workload.js';

export const containerName = engineObjectName;

/**
 * A container has one label set, shared with the labels swarmkeeper writes, so `containerLabels`
 * may not use their prefix: the controller's own would win, and the container be recreated forever.
 */
const containerLabels = stringMap.superRefine((labels, ctx) => {
  for (const key of Object.keys(labels)) {
    if (key.startsWith(RESERVED_LABEL_PREFIX))
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `keys starting "${RESERVED_LABEL_PREFIX}" are reserved`,
      });
  }
});

const containerPort = z.strictObject({
  target: port,
  published: port.optional(),
  protocol: protocol.optional(),
  /** Host address to bind, default all. */
  hostIp: z.string().min(1).optional(),
});

/**
 * A plain container outside the Swarm, like the seed's Let's Encrypt nginx, which needs
 * NET_ADMIN and joins the attachable overlay network.
 */
export const containerSpec = z.strictObject({
  image: z.string().min(1),
  entrypoint: commandList.optional(),
  command: commandList.optional(),
  workingDir: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  hostname: z.string().min(1).optional(),
  env: environment.optional(),
  containerLabels: containerLabels.optional(),
  networks: z.array(networkAttachment).optional(),
  ports: z.array(containerPort).optional(),
  mounts: z.array(mount).optional(),
  capAdd: capabilityList.optional(),
  capDrop: capabilityList.optional(),
  /** As compose's `restart`. */
  restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']).optional(),
  resources: z.strictObject({ limits: resourceLimits.optional() }).optional(),
  healthcheck: healthcheck.optional(),
  /** `running` (the default) or `stopped`: a stopped container is left stopped. */
  state: z.enum(['running', 'stopped']).optional(),
});

export type ContainerSpec = z.infer<typeof containerSpec>;
