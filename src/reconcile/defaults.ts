/**
 * Two kinds of default live here, kept apart on purpose:
 *
 * - swarmkeeper's own defaults, applied when translating a manifest that leaves a field out;
 * - the values Docker fills in by itself (the engine, swarmkit or the `docker` CLI), which the
 *   diff must read as "not set" so that an object created by anyone does not show drift for a
 *   field the manifest never mentioned.
 */

/** A Service with no `mode` is replicated: the compose and `docker service create` default. */
export const DEFAULT_SERVICE_MODE = 'replicated';

/** A replicated Service with no `replicas` runs one task, as `docker service create` does. */
export const DEFAULT_REPLICAS = 1;

/** A Network with no `driver` is an overlay: swarmkeeper's networks exist to connect Swarm services. */
export const DEFAULT_NETWORK_DRIVER = 'overlay';

/** A Volume with no `driver` uses `local`, the engine's own default. */
export const DEFAULT_VOLUME_DRIVER = 'local';

/** What deleting a Volume resource does to the volume: keep it. */
export const DEFAULT_RECLAIM_POLICY = 'Retain';

/** A Container with no `restart` gets `no`, as `docker run` does; the controller restarts it instead. */
export const DEFAULT_CONTAINER_RESTART = 'no';

/** A Container with no `state` is kept running. */
export const DEFAULT_CONTAINER_STATE = 'running';

/**
 * Config files default to `/<source>` and secret files to `/run/secrets/<source>` (the schema's
 * documented defaults). Realised objects are named `<source>-<hash8>`, so the file name must be set
 * explicitly or the container would see the hashed name.
 */
export const SECRETS_DIR = '/run/secrets/';
export const DEFAULT_PAYLOAD_UID = '0';
export const DEFAULT_PAYLOAD_GID = '0';
/** 0444, what the CLI and swarmkit use for config and secret files. */
export const DEFAULT_PAYLOAD_MODE = 0o444;

/** Fields of an update or rollback policy that Swarm applies when a manifest leaves them out. */
export const SWARM_UPDATE_DEFAULTS = {
  Parallelism: 1,
  Delay: 0,
  FailureAction: 'pause',
  Monitor: 5_000_000_000,
  MaxFailureRatio: 0,
  Order: 'stop-first',
} as const;

/** Swarm's restart policy when none is given; `docker service create` writes it out explicitly. */
export const SWARM_RESTART_DEFAULTS = {
  Condition: 'any',
  Delay: 5_000_000_000,
  MaxAttempts: 0,
  Window: 0,
} as const;

/** What the CLI writes for StopGracePeriod when no `--stop-grace-period` is given; the engine's default too. */
export const SWARM_STOP_GRACE_PERIOD = 10_000_000_000;

export const SWARM_ENDPOINT_MODE = 'vip';
export const SWARM_PUBLISH_MODE = 'ingress';
export const DEFAULT_PROTOCOL = 'tcp';
export const DEFAULT_BIND_PROPAGATION = 'rprivate';
export const DEFAULT_IPAM_DRIVER = 'default';

/** Network options Swarm adds on its own (the VXLAN id of an overlay) and never takes from a manifest. */
export const ENGINE_NETWORK_OPTIONS: ReadonlySet<string> = new Set([
  'com.docker.network.driver.overlay.vxlanid_list',
]);

/** Networks every engine has; a Container may name them without a Network resource. */
export const BUILTIN_NETWORKS: ReadonlySet<string> = new Set(['bridge', 'host', 'none', 'default']);
