/**
 * The composition root of `swarmkeeper run`: parse config once, build the Redis and Docker
 * adapters, start the controller, and drain on SIGTERM.
 */
import { DockerActuator, type FaultInjector } from './actuate/index.js';
import type { Config } from './config.js';
import { Controller } from './controller/controller.js';
import { openControllerState } from './desired/open.js';
import type { RedisDesiredStore } from './desired/redis-store.js';
import type { Logger } from './log.js';
import { DockerCallCounter } from './observed/call-counter.js';
import { createDocker, pingDocker, type Docker } from './observed/docker-client.js';
import { dockerEvents } from './observed/events.js';
import { DockerObservedReader } from './observed/reader.js';
import { NoQuotaDriver, type QuotaDriver } from './homes/quota/driver.js';
import { DEFAULT_PROJECT_FILES } from './homes/quota/project-files.js';
import { XfsQuotaDriver } from './homes/quota/xfs.js';
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

export interface ControllerApp {
  readonly controller: Controller;
  readonly store: RedisDesiredStore;
  readonly docker: Docker;
  readonly counter: DockerCallCounter;
  /** Stops the controller (bounded drain) and closes its connections. */
  close(): Promise<void>;
}

export interface AssembleOptions {
  readonly log: Logger;
  readonly mode: 'cli' | 'controller';
  /** Tests: abort multi-step procedures at named points, to prove they resume. */
  readonly faultInjector?: FaultInjector;
}

/** Builds the controller and its adapters from configuration; nothing runs until `start` or `runOnce`. */
export async function assembleController(config: Config, options: AssembleOptions): Promise<ControllerApp> {
  const { log } = options;
  const { store, journal, projectIds } = await openControllerState(config, options.mode, {
    onNotice: (message, fields) => log.warn(fields, message),
  });
  const docker = createDocker();
  const counter = new DockerCallCounter();
  const reader = new DockerObservedReader(docker, { counter });
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
  return {
    controller,
    store,
    docker,
    counter,
    close: async () => {
      await controller.stop(DRAIN_TIMEOUT_MS);
      await store.close();
    },
  };
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
  const app = await assembleController(config, { log, mode: options.once ? 'cli' : 'controller' });
  try {
    const engine = await pingDocker(app.docker);
    log.info(
      {
        engine: engine.engineVersion,
        api: engine.apiVersion,
        swarm: engine.swarm.localNodeState,
        prefix: config.SWARMKEEPER_PREFIX,
      },
      'controller starting',
    );
    if (options.once) {
      await app.controller.runOnce();
      log.info({ dockerCalls: app.counter.total() }, 'one pass done');
      return;
    }
    await app.controller.start();
    log.info({}, 'controller running');
    await (options.stopSignal ?? new Promise<never>(() => undefined));
    log.info({}, 'controller stopping');
  } finally {
    await app.close();
    log.info({}, 'controller stopped');
  }
}
