import { z } from 'zod';
import {
  capabilityList,
  commandList,
  duration,
  environment,
  healthcheck,
  port,
  stringMap,
  swarmObjectName,
} from '../common.js';
import { payloadName } from './payload.js';
import { mount, networkAttachment, protocol, resourceLimits, resourceReservations } from './workload.js';

export const serviceName = swarmObjectName;

const servicePort = z.strictObject({
  target: port,
  published: port.optional(),
  protocol: protocol.optional(),
  /** `ingress` (Swarm's routing mesh, the default) or `host`. */
  mode: z.enum(['ingress', 'host']).optional(),
});

/** A reference to a Config or Secret resource by name; the controller substitutes its realised `<name>-<hash8>`. */
const payloadReference = z.strictObject({
  source: payloadName,
  /** Path in the container; configs default to `/<source>`, secrets to `/run/secrets/<source>`. */
  target: z.string().min(1).optional(),
  uid: z.string().regex(/^\d+$/, 'must be a numeric uid').optional(),
  gid: z.string().regex(/^\d+$/, 'must be a numeric gid').optional(),
  /** File mode as an octal string, e.g. "0444". */
  mode: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'must be an octal mode string such as "0444"')
    .optional(),
});

const updatePolicy = z.strictObject({
  parallelism: z.number().int().min(0).optional(),
  delay: duration.optional(),
  failureAction: z.enum(['continue', 'pause', 'rollback']).optional(),
  monitor: duration.optional(),
  maxFailureRatio: z.number().min(0).max(1).optional(),
  order: z.enum(['stop-first', 'start-first']).optional(),
});

/** A Swarm service: the compose file's service, with `deploy:` flattened in. */
export const serviceSpec = z
  .strictObject({
    image: z.string().min(1),
    /** Replaces the image's ENTRYPOINT. */
    entrypoint: commandList.optional(),
    /** Replaces the image's CMD. */
    command: commandList.optional(),
    workingDir: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    hostname: z.string().min(1).optional(),
    env: environment.optional(),
    /** Labels on the containers; changing them restarts every task. */
    containerLabels: stringMap.optional(),
    networks: z.array(networkAttachment).optional(),
    ports: z.array(servicePort).optional(),
    mounts: z.array(mount).optional(),
    configs: z.array(payloadReference).optional(),
    secrets: z.array(payloadReference).optional(),
    /** `replicated` (the default) or `global`. Changing it recreates the service. */
    mode: z.enum(['replicated', 'global']).optional(),
    replicas: z.number().int().min(0).optional(),
    placement: z
      .strictObject({
        constraints: z.array(z.string().min(1)).optional(),
        preferences: z.array(z.strictObject({ spread: z.string().min(1) })).optional(),
        maxReplicas: z.number().int().min(0).optional(),
      })
      .optional(),
    resources: z
      .strictObject({
        limits: resourceLimits.optional(),
        reservations: resourceReservations.optional(),
      })
      .optional(),
    restartPolicy: z
      .strictObject({
        condition: z.enum(['none', 'on-failure', 'any']).optional(),
        delay: duration.optional(),
        maxAttempts: z.number().int().min(0).optional(),
        window: duration.optional(),
      })
      .optional(),
    updateConfig: updatePolicy.optional(),
    rollbackConfig: updatePolicy.optional(),
    healthcheck: healthcheck.optional(),
    capAdd: capabilityList.optional(),
    capDrop: capabilityList.optional(),
    stopGracePeriod: duration.optional(),
    stopSignal: z.string().min(1).optional(),
    endpointMode: z.enum(['vip', 'dnsrr']).optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.mode === 'global' && spec.replicas !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'a global service takes no replicas' });
    }
  });

export type ServiceSpec = z.infer<typeof serviceSpec>;
