/**
 * The environment, parsed once with defaults in the schema and then frozen. Every variable
 * swarmkeeper reads is listed here and in README.md; command-line flags override them.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { toFieldIssues } from './resources/resource.js';
import { DEFAULT_PREFIX } from './desired/keys.js';
import { DEFAULT_FOLDERS_PER_RESYNC } from './homes/sweep-window.js';

const environmentSchema = z.object({
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .default('redis://127.0.0.1:6379'),
  /** A file holding the Redis password, e.g. a Docker secret; read at start, never logged. */
  REDIS_PASSWORD_FILE: z.string().min(1).optional(),
  /** Redis Sentinel: `host:port,host:port`; the master is REDIS_SENTINEL_NAME. */
  REDIS_SENTINELS: z
    .string()
    .regex(/^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'must be host:port[,host:port...]')
    .optional(),
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  SWARMKEEPER_PREFIX: z
    .string()
    .regex(
      /^[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)*$/,
      'must be letters, digits, "_", "." or "-", optionally ":"-separated',
    )
    .default(DEFAULT_PREFIX),
  SWARMKEEPER_RESYNC_SECONDS: z.coerce.number().positive().max(86_400).default(30),
  /**
   * Home folders a resync looks at on disk (two lstat each), moving round the users; 0 for every
   * folder on every resync. See src/homes/sweep-window.ts.
   */
  SWARMKEEPER_FOLDERS_PER_RESYNC: z.coerce.number().int().min(0).default(DEFAULT_FOLDERS_PER_RESYNC),
  /** The `xfs_quota` command for HomeFolders with `quota.driver: xfs`; looked up on PATH unless absolute. */
  SWARMKEEPER_XFS_QUOTA: z.string().min(1).default('xfs_quota'),
  /** Keep /etc/projects and /etc/projid in step with the quotas swarmkeeper sets. */
  SWARMKEEPER_XFS_MANAGE_FILES: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Where /healthz, /readyz, /metrics and the users API listen. */
  SWARMKEEPER_HTTP_ADDR: z.string().min(1).default('0.0.0.0:9464'),
  /** The users API's bearer token, read from this file (a Docker secret); without it the API is off. */
  SWARMKEEPER_API_TOKEN_FILE: z.string().min(1).optional(),
  /** The status page at `/` without the token (it shows no secret, but the deployment's layout). */
  SWARMKEEPER_DASHBOARD_PUBLIC: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Users API requests per second and burst, per client address. */
  SWARMKEEPER_API_RATE: z.coerce.number().positive().default(20),
  SWARMKEEPER_API_BURST: z.coerce.number().int().positive().default(40),
  /** Leader election: set to false for a single replica that always acts. */
  SWARMKEEPER_LEADER_ELECTION: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** Lease timing, as client-go: lease 15 s, renew deadline 10 s, retry 2 s. */
  SWARMKEEPER_LEASE_MS: z.coerce.number().int().positive().default(15_000),
  SWARMKEEPER_RENEW_DEADLINE_MS: z.coerce.number().int().positive().default(10_000),
  SWARMKEEPER_RETRY_MS: z.coerce.number().int().positive().default(2_000),
  /**
   * The swarmkeeper image this controller runs as (deploy/stack.yml passes it on). The per-node
   * volume check job runs it on every node; unset, per-user volumes are checked only on the
   * controller's own engine.
   */
  SWARMKEEPER_IMAGE: z.string().min(1).optional(),
  /**
   * A volume check job that left a node unsettled (failed, a volume in use, no task) runs again
   * this long after it started.
   */
  SWARMKEEPER_VOLUME_CHECK_RERUN_SECONDS: z.coerce.number().positive().max(604_800).default(600),
  SWARMKEEPER_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
  /**
   * Chaos testing only: kill this process with SIGKILL when the named fault point is reached
   * (`network-recreate:after-remove`, `service-update:before`, ...; see src/actuate/faults.ts).
   */
  SWARMKEEPER_FAULT_KILL_AT: z
    .string()
    .regex(/^[a-z]+(?:-[a-z]+)*:[a-z]+(?:-[a-z]+)*$/, 'must name a fault point, e.g. service-update:before')
    .optional(),
});

export type Config = Readonly<z.infer<typeof environmentSchema>>;

/** The sentinels of REDIS_SENTINELS, or none. */
export function sentinelsOf(config: Config): { host: string; port: number }[] {
  return (config.REDIS_SENTINELS ?? '')
    .split(',')
    .filter(Boolean)
    .map((entry) => {
      const [host = '', port = ''] = entry.split(':');
      return { host, port: Number(port) };
    });
}

/** Parses the environment; fails with every bad variable named. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    throw new ConfigError(
      `invalid environment: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return Object.freeze(parsed.data);
}
