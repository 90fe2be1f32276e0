/**
 * The out-of-band changes of the time-to-repair benchmark, and for each a check that the Swarm
 * (or the filesystem) is right again, read through the Docker API. The same drifts run against
 * swarmkeeper and against the peer (docker stack deploy); only the names differ.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type Dockerode from 'dockerode';
import {
  envOf,
  imageOf,
  networkByName,
  networkTargets,
  removeNetworkWhenFree,
  replicasOf,
  serviceByName,
  taskCounts,
  taskTemplate,
  updateService,
} from './docker.js';
import type { Redis } from 'ioredis';
import type { Deployment } from './deployment.js';
import type { EventWatcher } from './events.js';
import { IMAGE } from './context.js';
import { now, statusCode } from './util.js';

export interface DriftTarget {
  readonly docker: Dockerode;
  readonly hub: string;
  readonly nginx: string;
  readonly notebook: string;
  readonly network: string;
  readonly spare: string;
  /** Another tag of the same image, for "image changed". */
  readonly otherImage: string;
  /** The plain container outside the Swarm (swarmkeeper only). */
  readonly container?: string;
  /** Where nginx mounts the config whose content changes. */
  readonly configTarget: string;
  /** Changes the desired content of nginx's config (Redis for swarmkeeper, the file for the peer). */
  readonly changeConfig: (content: string) => Promise<void>;
  /** Home folder and quota of one user (swarmkeeper only). */
  readonly home?: {
    readonly root: string;
    readonly user: string;
    readonly email: string;
    readonly uid: number;
    readonly gid: number;
    readonly mode: number;
    readonly quotaBytes: number;
    readonly statePath: string;
  };
  /** Stop and resume the controller around a multi-step change (swarmkeeper only). */
  readonly freeze?: () => void;
  readonly thaw?: () => void;
  /** How long "network recreated" lets the services' tasks settle on the new network (default 90 s). */
  readonly steadyTimeoutMs?: number;
}

/**
 * The Docker part of a drift target for swarmkeeper's run of the example deployment: its objects,
 * and the nginx config whose desired content lives in Redis under `prefix`.
 */
export function swarmkeeperTarget(
  docker: Dockerode,
  redis: Redis,
  deployment: Deployment,
  prefix: string,
  otherImage: string,
): DriftTarget {
  const configKey = `${prefix}:desired:Config:${deployment.names.nginxConf}`;
  return {
    docker,
    hub: deployment.names.hub,
    nginx: deployment.names.nginx,
    notebook: deployment.names.notebook,
    network: deployment.names.network,
    spare: deployment.names.spare,
    otherImage,
    container: deployment.names.container,
    configTarget: '/www/proxy.conf',
    changeConfig: async (content: string) => {
      await redis.hset(configKey, 'data', content);
    },
  };
}

/** The drifts of the list, in its order: those on Docker objects, then the home folder ones. */
export const DOCKER_DRIFTS = [
  'service-removed',
  'service-scaled',
  'image-changed',
  'env-changed',
  'network-removed',
  'network-recreated',
  'config-changed',
  'container-stopped',
] as const;
export const HOME_DRIFTS = ['folder-removed', 'quota-changed'] as const;
export const ALL_DRIFTS = [...DOCKER_DRIFTS, ...HOME_DRIFTS] as const;
export type DriftId = (typeof ALL_DRIFTS)[number];

export interface Drift {
  readonly id: string;
  readonly title: string;
  /** Makes the change; resolves with the moment it was complete (performance.now()). */
  act(trial: number): Promise<number>;
  /** True once the object is right again. */
  check(): Promise<boolean>;
  readonly pollMs: number;
  readonly timeoutMs: number;
  /** A second, wider check measured after the first passes (e.g. dependents outside the Swarm). */
  checkFull?(): Promise<boolean>;
  readonly fullTitle?: string;
}

export const DRIFT_TITLES: Record<string, string> = {
  'service-removed': 'service removed (nginx)',
  'service-scaled': 'service scaled, 1 → 0 replicas (hub)',
  'image-changed': 'image changed (hub)',
  'env-changed': 'env changed (hub)',
  'network-removed': 'network removed (its one service detached first)',
  'network-recreated': 'network recreated without attachable, 3 services attached',
  'config-changed': 'config content changed in the desired state',
  'container-stopped': 'container (outside the Swarm) stopped',
  'folder-removed': 'home folder removed',
  'quota-changed': 'quota changed (stand-in xfs_quota)',
};

const MANAGED = 'io.swarmkeeper.managed';

export function makeDrifts(t: DriftTarget, options: { managed: boolean; timeoutMs: number }): Drift[] {
  const { docker } = t;
  const timeoutMs = options.timeoutMs;
  const drifts: Drift[] = [];
  const add = (d: Omit<Drift, 'title' | 'pollMs' | 'timeoutMs'> & Partial<Drift>): void => {
    drifts.push({ title: DRIFT_TITLES[d.id] ?? d.id, pollMs: 25, timeoutMs, ...d });
  };

  add({
    id: 'service-removed',
    act: async () => {
      await docker.getService(t.nginx).remove();
      return now();
    },
    check: async () => {
      const s = await serviceByName(docker, t.nginx);
      return s !== undefined && (!options.managed || s.Spec?.Labels?.[MANAGED] === 'true');
    },
  });
  add({
    id: 'service-scaled',
    act: async () => {
      await updateService(docker, t.hub, (spec) => {
        spec.Mode = { Replicated: { Replicas: 0 } };
      });
      return now();
    },
    check: async () => replicasOf(await serviceByName(docker, t.hub)) === 1,
  });
  add({
    id: 'image-changed',
    act: async () => {
      await updateService(docker, t.hub, (spec) => {
        const task = spec.TaskTemplate as ReturnType<typeof taskTemplate>;
        if (task?.ContainerSpec) task.ContainerSpec.Image = t.otherImage;
      });
      return now();
    },
    check: async () => {
      const image = imageOf(await serviceByName(docker, t.hub));
      return image === IMAGE || image.startsWith(`${IMAGE}@`);
    },
  });
  add({
    id: 'env-changed',
    act: async (trial) => {
      await updateService(docker, t.hub, (spec) => {
        const task = spec.TaskTemplate as ReturnType<typeof taskTemplate>;
        if (task?.ContainerSpec)
          task.ContainerSpec.Env = [...(task.ContainerSpec.Env ?? []), `BENCH_DRIFT=${trial}`];
      });
      return now();
    },
    check: async () => !envOf(await serviceByName(docker, t.hub)).some((e) => e.startsWith('BENCH_DRIFT=')),
  });
  add({
    id: 'network-removed',
    act: async () => {
      t.freeze?.();
      try {
        const spare = await networkByName(docker, t.spare);
        if (!spare) throw new Error(`network ${t.spare} missing before the drift`);
        await updateService(docker, t.notebook, (spec) => {
          const task = spec.TaskTemplate as ReturnType<typeof taskTemplate>;
          if (task)
            task.Networks = (task.Networks ?? []).filter(
              (n) => n.Target !== spare.Id && n.Target !== t.spare,
            );
        });
        await removeNetworkWhenFree(docker, spare.Id);
      } finally {
        t.thaw?.();
      }
      return now();
    },
    check: async () => {
      const spare = await networkByName(docker, t.spare);
      if (!spare) return false;
      return networkTargets(await serviceByName(docker, t.notebook)).includes(spare.Id);
    },
  });
  add({
    id: 'network-recreated',
    timeoutMs: Math.max(timeoutMs, 120_000),
    act: async () => {
      t.freeze?.();
      try {
        const old = await networkByName(docker, t.network);
        if (!old) throw new Error(`network ${t.network} missing before the drift`);
        const services = [t.hub, t.nginx, t.notebook];
        const aliases = new Map<string, string[] | undefined>();
        for (const name of services) {
          await updateService(docker, name, (spec) => {
            const task = spec.TaskTemplate as ReturnType<typeof taskTemplate>;
            if (!task) return;
            const mine = (task.Networks ?? []).find((n) => n.Target === old.Id || n.Target === t.network);
            aliases.set(name, mine?.Aliases);
            task.Networks = (task.Networks ?? []).filter((n) => n !== mine);
          });
        }
        if (t.container) {
          try {
            await docker.getNetwork(old.Id).disconnect({ Container: t.container, Force: true });
          } catch (error) {
            if (statusCode(error) !== 404) throw error;
          }
        }
        await removeNetworkWhenFree(docker, old.Id, 90_000);
        // Same name and labels (so it is still the deployment's), but not attachable. The name
        // stays taken for a moment after the remove returns.
        const created = await createWhenNameFree(docker, {
          Name: t.network,
          Driver: 'overlay',
          Attachable: false,
          CheckDuplicate: true,
          Labels: old.Labels ?? {},
        });
        for (const name of services) {
          const alias = aliases.get(name);
          await updateService(docker, name, (spec) => {
            const task = spec.TaskTemplate as ReturnType<typeof taskTemplate>;
            if (!task) return;
            task.Networks = [
              ...(task.Networks ?? []),
              { Target: created.id, ...(alias && { Aliases: alias }) },
            ];
          });
        }
        // A plain container cannot join a network that is not attachable: it stays off it.
        // The drift is a network that has been like this for a while, as in the seed guide:
        // let the services' tasks run on it before the controller looks.
        await waitSteady(docker, services, t.steadyTimeoutMs ?? 90_000);
      } finally {
        t.thaw?.();
      }
      return now();
    },
    check: async () => {
      const network = await networkByName(docker, t.network);
      if (!network?.Attachable) return false;
      for (const name of [t.hub, t.nginx, t.notebook]) {
        if (!networkTargets(await serviceByName(docker, name)).includes(network.Id)) return false;
      }
      return true;
    },
    // The container outside the Swarm could not stay on the non-attachable network: it is right
    // again once it is back on the new one.
    ...(t.container && {
      fullTitle: 'and the container back on it',
      checkFull: async () => {
        const network = await networkByName(docker, t.network);
        if (!network?.Attachable || !t.container) return false;
        const info = await docker.getContainer(t.container).inspect();
        return info.NetworkSettings.Networks[t.network]?.NetworkID === network.Id;
      },
    }),
  });
  let content = '';
  add({
    id: 'config-changed',
    act: async (trial) => {
      content = `# bench ${t.nginx} trial ${trial} ${Date.now()}\n`;
      await t.changeConfig(content);
      return now();
    },
    check: async () => {
      if (content === '') return true; // not changed yet
      const service = await serviceByName(docker, t.nginx);
      const ref = taskTemplate(service)?.ContainerSpec?.Configs?.find((c) => c.File?.Name === t.configTarget);
      if (!ref?.ConfigID) return false;
      const config = await docker.getConfig(ref.ConfigID).inspect();
      return Buffer.from(config.Spec?.Data ?? '', 'base64').toString('utf8') === content;
    },
  });
  if (t.container) {
    const container = t.container;
    add({
      id: 'container-stopped',
      act: async () => {
        await docker.getContainer(container).stop({ t: 0 });
        return now();
      },
      check: async () => (await docker.getContainer(container).inspect()).State.Running,
    });
  }
  if (t.home) {
    const home = t.home;
    const folder = path.join(home.root, home.user);
    add({
      id: 'folder-removed',
      pollMs: 5,
      act: async () => {
        await rm(folder, { recursive: true, force: true });
        return now();
      },
      check: async () => {
        try {
          const s = await stat(folder);
          if (!s.isDirectory() || (s.mode & 0o7777) !== home.mode || s.uid !== home.uid || s.gid !== home.gid)
            return false;
          return (await readFile(path.join(home.root, `${home.user}_email.txt`), 'utf8')) === home.email;
        } catch {
          return false;
        }
      },
    });
    add({
      id: 'quota-changed',
      pollMs: 5,
      act: async () => {
        const state = JSON.parse(await readFile(home.statePath, 'utf8')) as Record<
          string,
          { path?: string; bhard?: number }
        >;
        const entry = Object.values(state).find((e) => e.path === folder);
        if (!entry) throw new Error(`no quota entry for ${folder} in ${home.statePath}`);
        entry.bhard = home.quotaBytes / 2;
        const temp = `${home.statePath}.bench.tmp`;
        await writeFile(temp, JSON.stringify(state, null, 2));
        await rename(temp, home.statePath);
        return now();
      },
      check: async () => {
        try {
          const state = JSON.parse(await readFile(home.statePath, 'utf8')) as Record<
            string,
            { path?: string; bhard?: number }
          >;
          return Object.values(state).some((e) => e.path === folder && e.bhard === home.quotaBytes);
        } catch {
          return false;
        }
      },
    });
  }
  return drifts;
}

/** Until each service runs its one task and no rollout is in progress (or the time is up). */
async function waitSteady(docker: Dockerode, services: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let steady = true;
    for (const name of services) {
      const service = await serviceByName(docker, name);
      const state = service?.UpdateStatus?.State;
      const tasks = await taskCounts(docker, name);
      if (state === 'updating' || state === 'rollback_started' || tasks.up !== 1 || tasks.desired !== 1)
        steady = false;
    }
    if (steady) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function createWhenNameFree(
  docker: Dockerode,
  options: Dockerode.NetworkCreateOptions,
): Promise<{ id: string }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await docker.createNetwork(options);
    } catch (error) {
      if (statusCode(error) !== 409 || attempt > 300) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export interface TrialResult {
  readonly trial: number;
  /** When the change was complete (performance.now()). */
  readonly t0: number;
  /** Change complete → Swarm right again, ms; undefined when it timed out. */
  readonly ms?: number;
  readonly timedOut: boolean;
  readonly checks: number;
  /** How long the out-of-band change itself took (for the multi-step ones). */
  readonly actMs: number;
  /** Change complete → the wider check passed, when the drift has one. */
  readonly fullMs?: number;
  /** The engine restarted (someone else's doing) during the trial: left out of the figures. */
  readonly engineRestart?: boolean;
  readonly error?: string;
}

/**
 * One trial: make the change, then check after every Docker event and at least every pollMs.
 * The repair moment is the middle of the first check that passes (a check takes 1-3 ms).
 */
export async function measureTrial(drift: Drift, events: EventWatcher, trial: number): Promise<TrialResult> {
  const actStarted = now();
  const t0 = await drift.act(trial);
  const actMs = now() - actStarted;
  const deadline = t0 + drift.timeoutMs;
  let checks = 0;
  for (;;) {
    const started = now();
    checks++;
    let ok = false;
    try {
      ok = await drift.check();
    } catch {
      ok = false;
    }
    const ended = now();
    if (ok) {
      const result = { trial, t0, ms: (started + ended) / 2 - t0, timedOut: false, checks, actMs };
      if (!drift.checkFull) return result;
      const full = await waitCheck(
        () => drift.checkFull?.() ?? Promise.resolve(true),
        events,
        drift.pollMs,
        deadline,
      );
      return { ...result, ...(full !== undefined && { fullMs: full - t0 }) };
    }
    if (ended > deadline) return { trial, t0, timedOut: true, checks, actMs };
    await events.next(drift.pollMs);
  }
}

async function waitCheck(
  check: () => Promise<boolean>,
  events: EventWatcher,
  pollMs: number,
  deadline: number,
): Promise<number | undefined> {
  for (;;) {
    const started = now();
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false;
    }
    const ended = now();
    if (ok) return (started + ended) / 2;
    if (ended > deadline) return undefined;
    await events.next(pollMs);
  }
}
