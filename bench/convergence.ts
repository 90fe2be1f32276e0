/**
 * 2. Convergence from nothing: manifests/examples/local (renamed for the run) applied with the
 * CLI to a running controller on a Swarm where none of its objects exist, timed until every
 * object exists and every task and the container run (read through the Docker API, the same
 * criterion as the peer), and until `swarmkeeper status` says every resource is Healthy. The
 * peer: the equivalent compose file deployed with `docker stack deploy`, timed until all its
 * tasks run.
 */
import path from 'node:path';
import { swarmkeeper } from './lib/cli.js';
import { removeRunObjects, type RunContext } from './lib/context.js';
import { ControllerProcess } from './lib/controller.js';
import { deploymentFor, type Deployment } from './lib/deployment.js';
import { networkByName, serviceByName, taskCounts } from './lib/docker.js';
import { PeerStack } from './lib/peer.js';
import { notReady } from './lib/status.js';
import { freePorts, now, round, say, sleep, summarize, waitFor, type Summary } from './lib/util.js';

export interface ConvergenceResult {
  readonly benchmark: 'convergence';
  readonly smoke: boolean;
  readonly startedAt: string;
  readonly trials: number;
  readonly swarmkeeper: {
    /** `swarmkeeper apply -f` of the example, wall time of the CLI process. */
    readonly apply: Summary;
    /** apply start → every object exists, every task and the container running (Docker API). */
    readonly running: Summary;
    /** apply start → every resource Synced and Healthy in status (the container's healthcheck included). */
    readonly healthy: Summary;
    readonly raw: readonly { apply: number; running: number; healthy: number }[];
  };
  readonly peer?: {
    /** deploy start → every task running. */
    readonly running: Summary;
    /** deploy start → every task running and nginx's healthcheck passed. */
    readonly healthy: Summary;
    readonly deploy: Summary;
    readonly command: string;
    readonly raw: readonly { deploy: number; running: number; healthy: number }[];
  };
  readonly notes: readonly string[];
}

export async function runConvergence(
  ctx: RunContext,
  options: { peer: boolean },
): Promise<ConvergenceResult> {
  const startedAt = new Date().toISOString();
  const trials = ctx.smoke ? 1 : 5;
  const notes: string[] = [];
  const skRaw: { apply: number; running: number; healthy: number }[] = [];
  let leftOut = 0;
  for (let trial = 1; trial <= trials; trial++) {
    const deployment = await deploymentFor(ctx, `convergence-${trial}`);
    const { np } = deployment;
    const prefix = ctx.newPrefix('convergence');
    const controller = new ControllerProcess({
      redisUrl: ctx.redisUrl,
      prefix,
      logFile: ctx.logFile(`convergence-${trial}`),
    });
    await controller.start();
    await controller.idle(300);
    const t0 = now();
    const applied = await swarmkeeper(['apply', '-f', deployment.file], { redisUrl: ctx.redisUrl, prefix });
    if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
    const applyMs = now() - t0;
    const running = await waitFor(
      'the example to run',
      () => allRunning(ctx, deployment).then((ok) => ok && now()),
      {
        timeoutMs: 180_000,
        intervalMs: 20,
      },
    );
    const refs = deployment.docs.map((d) => ({ kind: d.kind, name: d.metadata.name }));
    const healthy = await waitFor(
      'every resource Healthy',
      async () => (await notReady(ctx.redis, prefix, refs)).length === 0 && now(),
      { timeoutMs: 180_000, intervalMs: 50 },
    );
    if (ctx.engineAwayDuring(t0, healthy)) {
      notes.push(`swarmkeeper trial ${trial} left out: the engine was restarted (by someone else) during it`);
      trial--;
      if (++leftOut > 3) throw new Error('the engine keeps restarting');
    } else skRaw.push({ apply: applyMs, running: running - t0, healthy: healthy - t0 });
    say(
      `convergence: swarmkeeper #${trial}: apply ${round(applyMs)} ms, running ${round(running - t0)} ms, Healthy ${round(healthy - t0)} ms`,
    );
    await controller.stop();
    await removeRunObjects(ctx, np);
    await ctx.dropPrefix(prefix);
  }

  let peer: ConvergenceResult['peer'];
  if (options.peer) {
    const raw: { deploy: number; running: number; healthy: number }[] = [];
    let command = '';
    for (let trial = 1; trial <= trials; trial++) {
      const np = ctx.newNamePrefix();
      const ports = await freePorts(2);
      const stack = new PeerStack(ctx, np, path.join(ctx.tmp, `convergence-peer-${trial}`), ports, false);
      command = stack.commandLine;
      await stack.prepare();
      const t0 = now();
      const result = await stack.deploy();
      if (result.code !== 0) throw new Error(`docker stack deploy failed: ${result.stderr}`);
      const deployMs = now() - t0;
      const services = [stack.name('jupyterhubserver'), stack.name('nginx')];
      const running = await waitFor(
        'the stack to run',
        async () => {
          for (const s of services) {
            const tasks = await taskCounts(ctx.docker, s);
            if (tasks.running !== 1) return false;
          }
          return now();
        },
        { timeoutMs: 180_000, intervalMs: 20 },
      );
      const healthy = await waitFor(
        'the stack healthy',
        async () => {
          const containers = await ctx.docker.listContainers({
            filters: JSON.stringify({ label: [`com.docker.swarm.service.name=${stack.name('nginx')}`] }),
          });
          return containers.some((c) => c.Status.includes('(healthy)')) && now();
        },
        { timeoutMs: 180_000, intervalMs: 50 },
      );
      if (ctx.engineAwayDuring(t0, healthy)) {
        notes.push(`peer trial ${trial} left out: the engine was restarted (by someone else) during it`);
        trial--;
        if (++leftOut > 3) throw new Error('the engine keeps restarting');
      } else raw.push({ deploy: deployMs, running: running - t0, healthy: healthy - t0 });
      say(`convergence: peer #${trial}: deploy ${round(deployMs)} ms, running ${round(running - t0)} ms`);
      await stack.remove();
      await sleep(500);
    }
    peer = {
      running: summarize(raw.map((r) => r.running)),
      healthy: summarize(raw.map((r) => r.healthy)),
      deploy: summarize(raw.map((r) => r.deploy)),
      command,
      raw: raw.map((r) => ({
        deploy: round(r.deploy),
        running: round(r.running),
        healthy: round(r.healthy),
      })),
    };
  }
  notes.push(
    'The peer deploys less: a stack cannot hold the container outside the Swarm, its volume, the home folders or the per-user volumes, which swarmkeeper also creates in its figure.',
  );
  return {
    benchmark: 'convergence',
    smoke: ctx.smoke,
    startedAt,
    trials,
    swarmkeeper: {
      apply: summarize(skRaw.map((r) => r.apply)),
      running: summarize(skRaw.map((r) => r.running)),
      healthy: summarize(skRaw.map((r) => r.healthy)),
      raw: skRaw.map((r) => ({
        apply: round(r.apply),
        running: round(r.running),
        healthy: round(r.healthy),
      })),
    },
    ...(peer && { peer }),
    notes,
  };
}

/** Every Docker object of the deployment exists, each service runs its task, the container runs. */
async function allRunning(ctx: RunContext, deployment: Deployment): Promise<boolean> {
  const n = deployment.names;
  if (!(await networkByName(ctx.docker, n.network))) return false;
  for (const volume of [n.nfsVolume, n.nginxVolume]) {
    try {
      await ctx.docker.getVolume(volume).inspect();
    } catch {
      return false;
    }
  }
  for (const service of [n.hub, n.nginx]) {
    if (!(await serviceByName(ctx.docker, service))) return false;
    if ((await taskCounts(ctx.docker, service)).running !== 1) return false;
  }
  try {
    const container = await ctx.docker.getContainer(n.container).inspect();
    return container.State.Running;
  } catch {
    return false;
  }
}
