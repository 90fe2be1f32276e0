/**
 * The composition root of `swarmkeeper run`: parse config once, build the Redis and Docker
 * adapters, elect a leader, serve probes, metrics and the users API, run the controller, and
 * drain on SIGTERM.
 */
import { DockerActuator, type FaultInjector } from './actuate/index.js';
import type { Config } from './config.js';
import { Controller } from './controller/controller.js';
import { instanceIdentity, LeaderElector } from './controller/leader.js';
import { openControllerState } from './desired/open.js';
import type { RedisDesiredStore } from './desired/redis-store.js';
import { describeError } from './errors.js';
import { NoQuotaDriver, type QuotaDriver } from './homes/quota/driver.js';
import { DEFAULT_PROJECT_FILES } from './homes/quota/project-files.js';
import { XfsQuotaDriver } from './homes/quota/xfs.js';
import { metricsObserver } from './http/controller-metrics.js';
import { Metrics } from './http/metrics.js';
import { createHttpServer, type HttpServer, type ListeningAddress } from './http/server.js';
import type { Logger } from './log.js';
import { DockerCallCounter } from './observed/call-counter.js';
import { createDocker, pingDocker, type Docker } from './observed/docker-client.js';
import { dockerEvents } from './observed/events.js';
import { DockerObservedReader } from './observed/reader.js';
import type { ResourceOf } from './resources/resource.js';

export interface RunOptions {
  /** One pass, then exit: for scripts and CI. */
  readonly once: boolean;
  readonly log: Logger;
  /** Resolves when the controller should stop (SIGTERM/SIGINT in the CLI). */
  readonly stopSignal?: Promise<void>;
}

/** How long in-flight reconciles get to finish on SIGTERM. */
const DRAIN_TIMEOUT_MS = 20_000;
/** A Docker ping slower than this makes /readyz answer 503. */
const DOCKER_PING_TIMEOUT_MS = 1_500;

export interface ControllerApp {
  readonly controller: Controller;
  readonly store: RedisDesiredStore;
  readonly docker: Docker;
  readonly counter: DockerCallCounter;
  readonly metrics: Metrics;
  /** Present when leader election is on. */
  readonly elector: LeaderElector | undefined;
  /** Starts the controller, the elector and (unless `serveHttp` is off) the HTTP server. */
  start(options?: { readonly serveHttp?: boolean }): Promise<ListeningAddress | undefined>;
  /** Stops taking work, drains (bounded), releases the lease, closes the server and connections. */
  close(): Promise<void>;
}

export interface AssembleOptions {
  readonly log: Logger;
  readonly mode: 'cli' | 'controller';
  /** Tests: abort multi-step procedures at named points, to prove they resume. */
  readonly faultInjector?: FaultInjector;
  /** Defaults to the configuration; `run --once` and single-replica tests turn it off. */
  readonly leaderElection?: boolean;
}

/** Builds the controller and its adapters from configuration; nothing runs until `start` or `runOnce`. */
export async function assembleController(config: Config, options: AssembleOptions): Promise<ControllerApp> {
  const { log } = options;
  const { store, journal, projectIds, lease } = await openControllerState(config, options.mode, {
    onNotice: (message, fields) => log.warn(fields, message),
  });
  const docker = createDocker();
  const counter = new DockerCallCounter();
  const reader = new DockerObservedReader(docker, { counter });
  const metrics = new Metrics();
  const elector =
    (options.leaderElection ?? config.SWARMKEEPER_LEADER_ELECTION)
      ? new LeaderElector({
          lease,
          identity: instanceIdentity(),
          leaseMs: config.SWARMKEEPER_LEASE_MS,
          renewDeadlineMs: config.SWARMKEEPER_RENEW_DEADLINE_MS,
          retryMs: config.SWARMKEEPER_RETRY_MS,
          onTransition: (t) =>
            log.info(
              {
                from: t.from,
                to: t.to,
                reason: t.reason,
                identity: t.identity,
                ...(t.error !== undefined && { err: describeError(t.error) }),
              },
              'leadership changed',
            ),
        })
      : undefined;
  metrics.setLeader(elector === undefined);
  const actuator = new DockerActuator({
    docker,
    reader,
    counter,
    owner: config.SWARMKEEPER_PREFIX,
    journal,
    onStep: (step) => log.info(step, 'network recreate step'),
    ...(options.faultInjector && { faultInjector: options.faultInjector }),
  });
  const controller = new Controller({
    store,
    reader,
    executor: actuator,
    events: dockerEvents(docker, {
      counter,
      onNotice: (kind, fields) => log.info({ kind, ...fields }, 'docker event stream'),
    }),
    log,
    owner: config.SWARMKEEPER_PREFIX,
    resyncMs: config.SWARMKEEPER_RESYNC_SECONDS * 1000,
    observer: metricsObserver(metrics),
    ...(elector && { leadership: elector.leadership$ }),
    homes: { allocator: projectIds, quotaDriverFor: (homes) => quotaDriverFor(homes, config) },
    beforeFirstSync: async () => {
      for (const network of await actuator.pendingNetworkRecreates()) {
        const report = await actuator.resumeNetworkRecreate(network);
        if (report) {
          log.info(
            { kind: 'Network', name: network, verb: report.verb, durationMs: report.durationMs },
            'resumed',
          );
        }
      }
    },
  });

  let server: HttpServer | undefined;
  return {
    controller,
    store,
    docker,
    counter,
    metrics,
    elector,
    start: async ({ serveHttp = true } = {}) => {
      let address: ListeningAddress | undefined;
      if (serveHttp) {
        server = createHttpServer({
          log,
          metrics,
          readiness: async () => ({
            redis: controller.storeReachable,
            docker: await dockerReachable(docker),
            synced: controller.synced,
            leader: elector ? elector.isLeader : true,
          }),
          ...(config.SWARMKEEPER_API_TOKEN_FILE !== undefined && {
            users: { store, tokenFile: config.SWARMKEEPER_API_TOKEN_FILE },
          }),
          rateLimit: { ratePerSecond: config.SWARMKEEPER_API_RATE, burst: config.SWARMKEEPER_API_BURST },
        });
        address = await server.listen(config.SWARMKEEPER_HTTP_ADDR);
        log.info(
          {
            address: `${address.host}:${address.port}`,
            usersApi: config.SWARMKEEPER_API_TOKEN_FILE !== undefined,
          },
          'http listening',
        );
      }
      await controller.start();
      elector?.start();
      return address;
    },
    close: async () => {
      // Stop acting first, so no write happens after the lease is released.
      const drained = await controller.stop(DRAIN_TIMEOUT_MS);
      if (elector) {
        try {
          await elector.stop();
        } catch (error) {
          log.warn({ err: describeError(error) }, 'lease not released; it expires on its own');
        }
      }
      await server?.close();
      await store.close();
      log.info({ drained }, 'controller stopped');
    },
  };
}

async function dockerReachable(docker: Docker): Promise<boolean> {
  try {
    await Promise.race([
      pingDocker(docker),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('timeout')), DOCKER_PING_TIMEOUT_MS).unref(),
      ),
    ]);
    return true;
  } catch {
    return false;
  }
}

/** The quota backend a HomeFolders asks for: xfs_quota on its export root, or none. */
function quotaDriverFor(homes: ResourceOf<'HomeFolders'>, config: Config): QuotaDriver {
  if (homes.spec.quota?.driver !== 'xfs') return new NoQuotaDriver();
  return new XfsQuotaDriver({
    mountPoint: homes.spec.root,
    binary: config.SWARMKEEPER_XFS_QUOTA,
    ...(config.SWARMKEEPER_XFS_MANAGE_FILES && { manageFiles: DEFAULT_PROJECT_FILES }),
  });
}

export async function runController(config: Config, options: RunOptions): Promise<void> {
  const { log } = options;
  const app = await assembleController(config, {
    log,
    mode: options.once ? 'cli' : 'controller',
    ...(options.once && { leaderElection: false }),
  });
  try {
    const engine = await pingDocker(app.docker);
    log.info(
      {
        engine: engine.engineVersion,
        api: engine.apiVersion,
        swarm: engine.swarm.localNodeState,
        prefix: config.SWARMKEEPER_PREFIX,
        leaderElection: app.elector !== undefined,
      },
      'controller starting',
    );
    if (options.once) {
      await app.controller.runOnce();
      log.info({ dockerCalls: app.counter.total() }, 'one pass done');
      return;
    }
    await app.start();
    log.info({ identity: app.elector?.identity }, 'controller running');
    await (options.stopSignal ?? new Promise<never>(() => undefined));
    log.info({}, 'controller stopping');
  } finally {
    await app.close();
  }
}
