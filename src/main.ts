/**
 * The composition root of `swarmkeeper run`: parse config once, build the Redis and Docker
 * adapters, elect a leader, serve probes, metrics, the users API and the status page, run the
 * controller, feed the events stream from the log, and drain on SIGTERM.
 */
import { writeSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { pino } from 'pino';
import {
  DockerActuator,
  FAULT_POINTS,
  NETWORK_RECREATE_FAULTS,
  type FaultInjector,
} from './actuate/index.js';
import type { Config } from './config.js';
import { Controller } from './controller/controller.js';
import { EventSink } from './controller/event-sink.js';
import { instanceIdentity, LeaderElector } from './controller/leader.js';
import { openEventStream } from './desired/events.js';
import type { Lease } from './desired/lease.js';
import { openControllerState } from './desired/open.js';
import type { RedisDesiredStore } from './desired/redis-store.js';
import { ConfigError, describeError } from './errors.js';
import { NoQuotaDriver, type QuotaDriver } from './homes/quota/driver.js';
import { DEFAULT_PROJECT_FILES } from './homes/quota/project-files.js';
import { XfsQuotaDriver } from './homes/quota/xfs.js';
import { metricsObserver } from './http/controller-metrics.js';
import { Dashboard } from './http/dashboard/index.js';
import { Metrics } from './http/metrics.js';
import { createHttpServer, type HttpServer, type ListeningAddress } from './http/server.js';
import { createLogger, type Logger } from './log.js';
import { DockerCallCounter } from './observed/call-counter.js';
import { createDocker, pingDocker, type Docker } from './observed/docker-client.js';
import { dockerEvents } from './observed/events.js';
import { DockerObservedReader } from './observed/reader.js';
import type { ResourceOf } from './resources/resource.js';

export interface RunOptions {
  /** One pass, then exit: for scripts and CI. */
  readonly once: boolean;
  readonly log: Logger;
  /** The sink `log` writes to besides stdout (see `createControllerLogging`); absent, no events are kept. */
  readonly events?: EventSink;
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
  /** Drifts and actions `log` writes here go to `<prefix>:events`, through a connection of their own. */
  readonly events?: EventSink;
}

/** How long entries still buffered for the events stream get on the way out. */
const EVENTS_DRAIN_TIMEOUT_MS = 2_000;

export interface ControllerLogging {
  readonly log: Logger;
  /** The log's second destination, feeding `<prefix>:events`; hand it to `assembleController`. */
  readonly events: EventSink;
}

/**
 * The controller's logger: every line to `destination` (stdout by default) at the configured
 * level and, with `pino.multistream`, info and above to the event sink, which keeps the drifts,
 * actions, warnings and errors about resources for the events stream.
 */
export function createControllerLogging(
  config: Config,
  destination: pino.DestinationStream = pino.destination(1),
): ControllerLogging {
  const events = new EventSink({
    // Called only after a later append succeeds, by which time `log` exists.
    onDropped: (dropped) => log.warn({ dropped }, 'events stream lost entries while Redis was away'),
  });
  const level = config.SWARMKEEPER_LOG_LEVEL;
  const streams = pino.multistream([
    { level, stream: destination },
    { level: 'info', stream: events },
  ]);
  // The logger passes what either stream wants (info at least); each stream then keeps its own level.
  const verbose = level === 'debug' || level === 'trace';
  const log = createLogger(verbose ? level : 'info', streams);
  return { log, events };
}

/** Builds the controller and its adapters from configuration; nothing runs until `start` or `runOnce`. */
export async function assembleController(config: Config, options: AssembleOptions): Promise<ControllerApp> {
  const { log } = options;
  const faultInjector = withKillAt(config.SWARMKEEPER_FAULT_KILL_AT, options.faultInjector, log);
  const { store, journal, archives, projectIds, lease } = await openControllerState(config, options.mode, {
    onNotice: (message, fields) => log.warn(fields, message),
  });
  const eventStream = options.events ? await openEventStream(config, 'controller') : undefined;
  if (eventStream) options.events?.attach(eventStream);
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
    ...(faultInjector && { faultInjector }),
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
    homes: {
      allocator: projectIds,
      archives,
      quotaDriverFor: (homes) => quotaDriverFor(homes, config),
      foldersPerResync: config.SWARMKEEPER_FOLDERS_PER_RESYNC,
      volumeCheck: {
        image: config.SWARMKEEPER_IMAGE,
        rerunAfterMs: config.SWARMKEEPER_VOLUME_CHECK_RERUN_SECONDS * 1000,
      },
      ...(faultInjector && { faultInjector }),
    },
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
        const dashboard = await dashboardFor(config, { log, store, lease, elector });
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
          ...(dashboard && { dashboard }),
        });
        address = await server.listen(config.SWARMKEEPER_HTTP_ADDR);
        log.info(
          {
            address: `${address.host}:${address.port}`,
            usersApi: config.SWARMKEEPER_API_TOKEN_FILE !== undefined,
            statusPage: config.SWARMKEEPER_DASHBOARD_PUBLIC
              ? 'public'
              : config.SWARMKEEPER_API_TOKEN_FILE !== undefined
                ? 'token'
                : 'off',
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
      await options.events?.close(EVENTS_DRAIN_TIMEOUT_MS);
      await eventStream?.close();
    },
  };
}

/**
 * The status page, behind the users API's token, or public with SWARMKEEPER_DASHBOARD_PUBLIC; off
 * when neither is set. It reads the events stream on a connection of its own, so page loads never
 * queue behind the controller's appends; the server closes it.
 */
async function dashboardFor(
  config: Config,
  parts: {
    readonly log: Logger;
    readonly store: RedisDesiredStore;
    readonly lease: Lease;
    readonly elector: LeaderElector | undefined;
  },
): Promise<Dashboard | undefined> {
  const { log, store, lease, elector } = parts;
  const tokenFile = config.SWARMKEEPER_API_TOKEN_FILE;
  if (tokenFile === undefined && !config.SWARMKEEPER_DASHBOARD_PUBLIC) return undefined;
  const identity = elector?.identity ?? instanceIdentity();
  return new Dashboard({
    log,
    auth: { public: config.SWARMKEEPER_DASHBOARD_PUBLIC, ...(tokenFile !== undefined && { tokenFile }) },
    snapshot: {
      store,
      prefix: config.SWARMKEEPER_PREFIX,
      // Without leader election this replica always acts.
      instance: () => ({ identity, role: elector?.role ?? 'leader', election: elector !== undefined }),
      ...(elector && { leaseHolder: () => lease.holder() }),
    },
    events: await openEventStream(config, 'controller'),
  });
}

/** Every fault point SWARMKEEPER_FAULT_KILL_AT may name. */
export const ALL_FAULT_POINTS: readonly string[] = [
  ...Object.values(NETWORK_RECREATE_FAULTS),
  ...Object.values(FAULT_POINTS),
];

/**
 * SWARMKEEPER_FAULT_KILL_AT, for chaos tests: a fault injector that kills this process with SIGKILL
 * (no drain, no cleanup, as a crash or an OOM kill would) the first time the named point is
 * reached, after the tests' own injector, if any, has run.
 */
function withKillAt(
  killAt: string | undefined,
  injector: FaultInjector | undefined,
  log: Logger,
): FaultInjector | undefined {
  if (killAt === undefined) return injector;
  if (!ALL_FAULT_POINTS.includes(killAt)) {
    throw new ConfigError(
      `invalid environment: SWARMKEEPER_FAULT_KILL_AT: unknown fault point "${killAt}" (one of ${ALL_FAULT_POINTS.join(', ')})`,
      [{ path: 'SWARMKEEPER_FAULT_KILL_AT', message: 'unknown fault point' }],
    );
  }
  log.warn({ faultKillAt: killAt }, 'fault injection on: this process kills itself at that point');
  return (step) => {
    injector?.(step);
    if (step !== killAt) return;
    // Written synchronously: the logger writes asynchronously, and what it still holds dies with us.
    writeSync(
      process.stderr.fd,
      `swarmkeeper: fault injected at ${step}: killing this process with SIGKILL\n`,
    );
    process.kill(process.pid, 'SIGKILL');
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

/**
 * V8 lets the old generation grow to several times the live heap while the first sync of
 * thousands of users allocates at speed, and keeps that memory: at 10,000 users 154 MB of heap
 * held ~60 MB of live objects (RSS 219 MB). Growing it by 15 % at a time kept RSS at ~157 MB
 * with no measurable change in convergence time or resync CPU (BENCHMARKS.md). The factor is
 * read whenever V8 sets a new heap limit, so setting it at start, before the controller has
 * allocated much, is enough.
 */
const LONG_RUN_V8_FLAGS = ['--heap-growing-percent=15'] as const;

/** Applies {@link LONG_RUN_V8_FLAGS}; the controller process calls it once, first. */
export function tuneHeapForLongRun(): void {
  for (const flag of LONG_RUN_V8_FLAGS) setFlagsFromString(flag);
}

export async function runController(config: Config, options: RunOptions): Promise<void> {
  const { log } = options;
  if (!options.once) tuneHeapForLongRun();
  const app = await assembleController(config, {
    log,
    mode: options.once ? 'cli' : 'controller',
    ...(options.once && { leaderElection: false }),
    ...(options.events && { events: options.events }),
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
