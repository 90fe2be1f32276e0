/**
 * 4. Flapping: the example deployment plus 1,000 Users held in steady state for 10 minutes (60 s
 * in smoke mode) with the default 30 s resync. Every write to Docker is counted from the Docker
 * event stream (not from the controller's logs): the target is none.
 */
import { swarmkeeper } from './lib/cli.js';
import { removeRunObjects, type RunContext } from './lib/context.js';
import { ControllerProcess, diffCalls, totalCalls, WRITE_METHODS } from './lib/controller.js';
import { deploymentFor } from './lib/deployment.js';
import { classify, concerns, EventWatcher } from './lib/events.js';
import { notReady } from './lib/status.js';
import { errorMessage, now, round, say, sleep, waitFor } from './lib/util.js';

export interface FlappingResult {
  readonly benchmark: 'flapping';
  readonly smoke: boolean;
  readonly startedAt: string;
  readonly users: number;
  readonly resources: number;
  readonly windowSeconds: number;
  readonly resyncSeconds: number;
  /** Write events on the deployment's objects during the window (service/network/volume/config/secret create, update, remove; plain container create/start/stop/destroy/connect). */
  readonly writeEvents: number;
  readonly writeEventsByType: Readonly<Record<string, number>>;
  /** Task containers and endpoints that Swarm itself started or stopped (healthcheck restarts, ...). */
  readonly sideEffectEvents: number;
  /** Healthchecks and other reads on the deployment's objects. */
  readonly readEvents: number;
  /** The app's DockerCallCounter over the window. */
  readonly dockerWriteCalls: number;
  readonly dockerCallsByMethod: Readonly<Record<string, number>>;
  /** `drift detected` lines in the controller log during the window (for cross-checking only). */
  readonly driftLogLines: number;
  readonly failureLogLines: number;
  readonly convergeMs: number;
  readonly notes: readonly string[];
}

export async function runFlapping(ctx: RunContext, options: { seconds?: number }): Promise<FlappingResult> {
  const startedAt = new Date().toISOString();
  const windowSeconds = options.seconds ?? (ctx.smoke ? 60 : 600);
  const users = 1000;
  const deployment = await deploymentFor(ctx, 'flapping', { extraUsers: users });
  const { np } = deployment;
  const prefix = ctx.newPrefix('flapping');
  const controller = new ControllerProcess({
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: 30,
    logFile: ctx.logFile('flapping'),
    keepMinLevel: 30,
  });
  const events = new EventWatcher(ctx.docker, (e) => concerns(e, [np]));
  await events.start();
  try {
    await controller.start();
    const t0 = now();
    const applied = await swarmkeeper(['apply', '-f', deployment.file], { redisUrl: ctx.redisUrl, prefix });
    if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr.slice(0, 2000)}`);
    const refs = deployment.docs.map((d) => ({ kind: d.kind, name: d.metadata.name }));
    let missing: string[] = [];
    await waitFor(
      `the example and ${users} users to converge`,
      async () => {
        missing = await notReady(ctx.redis, prefix, refs);
        return missing.length === 0;
      },
      { timeoutMs: 15 * 60_000, intervalMs: 1000 },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; not ready: ${missing.slice(0, 10).join(', ')}`);
    });
    const convergeMs = now() - t0;
    say(`flapping: converged in ${round(convergeMs)} ms; settling`);
    // Let the healthchecks and the requeues of the first minutes pass before counting.
    await controller.idle(2000, 5 * 60_000);
    await sleep(ctx.smoke ? 5_000 : 30_000);
    const plain = new Set<string>();
    try {
      plain.add((await ctx.docker.getContainer(deployment.names.container).inspect()).Id);
    } catch {
      // counted as a write below if it had to be created again
    }
    const before = await controller.stats();
    const from = now();
    say(`flapping: counting writes for ${windowSeconds} s`);
    await sleep(windowSeconds * 1000);
    const after = await controller.stats();
    const window = events.since(from);
    const byType: Record<string, number> = {};
    let writes = 0;
    let side = 0;
    let reads = 0;
    for (const event of window) {
      const kind = classify(event, plain);
      if (kind === 'write') {
        writes++;
        const key = `${event.type} ${event.action}`;
        byType[key] = (byType[key] ?? 0) + 1;
      } else if (kind === 'side-effect') side++;
      else reads++;
    }
    const calls = diffCalls(before.calls, after.calls);
    const lines = controller.logs.filter((l) => l.receivedAt >= from);
    say(`flapping: ${writes} write events, ${totalCalls(calls, WRITE_METHODS)} write calls`);
    return {
      benchmark: 'flapping',
      smoke: ctx.smoke,
      startedAt,
      users,
      resources: deployment.docs.length,
      windowSeconds,
      resyncSeconds: 30,
      writeEvents: writes,
      writeEventsByType: byType,
      sideEffectEvents: side,
      readEvents: reads,
      dockerWriteCalls: totalCalls(calls, WRITE_METHODS),
      dockerCallsByMethod: calls,
      driftLogLines: lines.filter((l) => l.msg === 'drift detected').length,
      failureLogLines: lines.filter((l) => l.msg === 'reconcile failed').length,
      convergeMs: round(convergeMs),
      notes: [
        `The example's HomeFolders keeps its per-user volume template, so the ${users} Users also have ${users} Docker volumes.`,
      ],
    };
  } finally {
    events.stop();
    await controller.stop();
    // A cleanup that fails (the shared engine restarted by someone else) must not discard the
    // window just measured: the run's own cleanup at exit tries again.
    try {
      await removeRunObjects(ctx, np);
      await ctx.dropPrefix(prefix);
    } catch (error) {
      say(`flapping: cleanup failed, left to the run's cleanup: ${errorMessage(error)}`);
    }
  }
}
