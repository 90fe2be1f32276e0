/**
 * 1. Time to repair: an out-of-band change, then the moment the Swarm is right again as read
 * through the Docker API (a check after every Docker event, and at least every 25 ms; 5 ms for
 * the filesystem). In the same run: the floor (one service create plus the delivery of its
 * event) and the peer (docker stack deploy every 30 s) on the same drifts.
 */
import path from 'node:path';
import { swarmkeeper } from './lib/cli.js';
import { IMAGE, removeRunObjects, RUN_LABEL, XFS_STAND_IN, type RunContext } from './lib/context.js';
import { ControllerProcess, diffCalls, WRITE_METHODS } from './lib/controller.js';
import { deploymentFor, tagOtherImage, type Deployment } from './lib/deployment.js';
import { serviceByName, taskCounts, taskTemplate, updateService } from './lib/docker.js';
import {
  ALL_DRIFTS,
  DOCKER_DRIFTS,
  HOME_DRIFTS,
  makeDrifts,
  measureTrial,
  swarmkeeperTarget,
  DRIFT_TITLES,
  type Drift,
  type DriftTarget,
  type TrialResult,
} from './lib/drifts.js';
import { concerns, EventWatcher } from './lib/events.js';
import { PeerStack, PEER_PERIOD_MS } from './lib/peer.js';
import { notReady } from './lib/status.js';
import { readResult } from './lib/results.js';
import { freePorts, now, round, say, sleep, summarize, waitFor, type Summary } from './lib/util.js';

export interface DriftRow {
  readonly id: string;
  readonly title: string;
  readonly trials: number;
  readonly summary: Summary;
  readonly timeouts: number;
  /** Trials left out because the engine restarted during them (someone else's doing). */
  readonly leftOut: number;
  readonly resyncSeconds: number;
  /** From the controller's log: change → first `drift detected` line (p50), for reading the profile. */
  readonly detectP50Ms?: number | undefined;
  readonly actP50Ms?: number | undefined;
  /** The wider check (see Drift.checkFull), when the drift has one. */
  readonly full?: { readonly title: string; readonly summary: Summary };
  readonly raw: readonly TrialResult[];
  readonly note?: string;
}

export interface PeerRow {
  readonly id: string;
  readonly title: string;
  readonly trials: number;
  readonly summary?: Summary;
  readonly timeouts: number;
  readonly never: boolean;
  readonly reason?: string;
  readonly raw?: readonly TrialResult[];
}

export interface RepairResult {
  readonly benchmark: 'repair';
  readonly smoke: boolean;
  readonly startedAt: string;
  readonly durationS: number;
  readonly trialsPerDrift: number;
  readonly floor: {
    readonly createAndEvent: Summary;
    readonly createCall: Summary;
    readonly inspect: Summary;
  };
  readonly rows: readonly DriftRow[];
  readonly peer?: {
    readonly trialsPerDrift: number;
    readonly periodS: number;
    readonly command: string;
    readonly deploys: { readonly n: number; readonly failed: number; readonly ms: Summary };
    readonly rows: readonly PeerRow[];
  };
  readonly controller: { readonly writeCalls: Record<string, number>; readonly problems: readonly string[] };
  readonly notes: readonly string[];
}

/** The resync period of the controller that measures the home-folder rows. */
const HOME_RESYNC_S = 2;

/** Where a drift stands in the issue's list. */
const driftOrder = (id: string): number => (ALL_DRIFTS as readonly string[]).indexOf(id);

export async function runRepair(ctx: RunContext, options: { peer: boolean }): Promise<RepairResult> {
  const started = now();
  const startedAt = new Date().toISOString();
  const trials = ctx.smoke ? 1 : 20;
  const notes: string[] = [];
  const deployment = await deploymentFor(ctx, 'repair', { extras: true, quotaDriver: 'xfs' });
  const { np, dir, ports } = deployment;
  const otherImage = await tagOtherImage(ctx, deployment);

  // BENCH_PEER_ONLY=1 measures the peer again and keeps swarmkeeper's rows of the last result.
  if (process.env.BENCH_PEER_ONLY && options.peer) {
    const previous = await readResult<RepairResult & { runId?: string }>('repair', ctx.smoke);
    if (!previous || 'broken' in previous) throw new Error('BENCH_PEER_ONLY needs an earlier repair result');
    const peer = await runPeer(ctx, np, dir, ports);
    return {
      ...previous,
      peer,
      notes: [
        ...previous.notes,
        `The peer rows come from run ${ctx.runId} (${startedAt.slice(0, 16)}); swarmkeeper's from run ${previous.runId ?? '?'}.`,
      ],
    };
  }

  const events = new EventWatcher(ctx.docker, (e) => concerns(e, [np]));
  await events.start();
  ctx.onCleanup('event watcher', () => Promise.resolve(events.stop()), 'stop');

  const prefix = ctx.newPrefix('repair');
  const statePath = path.join(dir, 'xfs-state.json');
  const controllerEnv = {
    SWARMKEEPER_XFS_QUOTA: XFS_STAND_IN,
    XFS_QUOTA_STATE: statePath,
    XFS_QUOTA_LOG: path.join(dir, 'xfs.log'),
  };
  let controller = new ControllerProcess({
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: 30,
    env: controllerEnv,
    logFile: ctx.logFile('repair-controller'),
  });
  await controller.start();
  ctx.onCleanup('repair controller', () => controller.stop(), 'stop');

  say(
    `repair: applying ${path.relative(ctx.tmp, deployment.file)} (${deployment.docs.length} resources, prefix ${np})`,
  );
  const applied = await swarmkeeper(['apply', '-f', deployment.file], { redisUrl: ctx.redisUrl, prefix });
  if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
  await waitConverged(ctx, deployment, prefix, 240_000);
  say('repair: deployment converged');

  const floor = await measureFloor(ctx, events, np, ctx.smoke ? 5 : 20);
  say(`repair: floor p50 ${floor.createAndEvent.p50} ms`);

  const target: DriftTarget = {
    ...swarmkeeperTarget(ctx.docker, ctx.redis, deployment, prefix, otherImage),
    home: {
      root: deployment.root,
      user: 'alice',
      email: 'alice@example.org',
      uid: 1000,
      gid: 100,
      mode: 0o770,
      quotaBytes: 2 * 2 ** 30,
      statePath,
    },
    freeze: () => controller.freeze(),
    thaw: () => controller.thaw(),
  };
  const drifts = makeDrifts(target, { managed: true, timeoutMs: 60_000 });
  const byId = new Map(drifts.map((d) => [d.id, d]));
  const rows: DriftRow[] = [];
  const callsBefore = (await controller.stats()).calls;

  const settle = async (): Promise<void> => {
    try {
      await settleSwarm(ctx, drifts, [
        deployment.names.hub,
        deployment.names.nginx,
        deployment.names.notebook,
      ]);
      await controller.idle(300);
    } catch (error) {
      notes.push(`settle before a trial timed out: ${String(error)}`);
      say(`repair: ${String(error)}`);
    }
  };

  const runRow = async (id: string, resyncSeconds: number): Promise<void> => {
    const drift = byId.get(id);
    if (!drift) return;
    const raw: TrialResult[] = [];
    const detect: number[] = [];
    for (let trial = 1; trial <= trials; trial++) {
      await settle();
      let result: TrialResult;
      try {
        result = await measureTrial(drift, events, trial);
      } catch (error) {
        notes.push(`${id} trial ${trial} could not be staged: ${String(error)}`);
        say(`repair: ${id} #${trial}: could not be staged: ${String(error)}`);
        continue;
      }
      if (ctx.engineAwayDuring(result.t0 - result.actMs, result.t0 + (result.ms ?? drift.timeoutMs)))
        result = { ...result, engineRestart: true };
      raw.push(result);
      const line = controller.logs.find((l) => l.receivedAt >= result.t0 && l.msg === 'drift detected');
      if (line) detect.push(line.receivedAt - result.t0);
      say(
        `repair: ${id} #${trial}: ${result.timedOut ? 'TIMEOUT' : `${round(result.ms ?? 0)} ms`} (act ${round(result.actMs)} ms, ${result.checks} checks)`,
      );
    }
    const kept = raw.filter((r) => !r.engineRestart);
    rows.push({
      id,
      title: DRIFT_TITLES[id] ?? id,
      trials: kept.length,
      summary: summarize(kept.flatMap((r) => (r.ms === undefined ? [] : [r.ms]))),
      timeouts: kept.filter((r) => r.timedOut).length,
      leftOut: raw.length - kept.length,
      resyncSeconds,
      ...(detect.length > 0 && { detectP50Ms: summarize(detect).p50 }),
      actP50Ms: summarize(raw.map((r) => r.actMs)).p50,
      ...(drift.fullTitle && {
        full: {
          title: drift.fullTitle,
          summary: summarize(kept.flatMap((r) => (r.fullMs === undefined ? [] : [r.fullMs]))),
        },
      }),
      raw: raw.map(roundTrial),
    });
  };

  // BENCH_DRIFTS=a,b limits the rows (for working on one drift).
  const only = process.env.BENCH_DRIFTS?.split(',');
  for (const id of DOCKER_DRIFTS) if (!only || only.includes(id)) await runRow(id, 30);

  // Home folders and quotas are looked at once per resync: a second controller with a short one.
  const writeCalls = diffCalls(callsBefore, (await controller.stats()).calls);
  await controller.stop();
  const problems = controller.problems().map((l) => `${l.msg}: ${JSON.stringify(l.err ?? l.reason ?? '')}`);
  controller = new ControllerProcess({
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: HOME_RESYNC_S,
    env: controllerEnv,
    logFile: ctx.logFile('repair-controller-home'),
  });
  await controller.start();
  await waitConverged(ctx, deployment, prefix, 120_000);
  for (const id of HOME_DRIFTS) if (!only || only.includes(id)) await runRow(id, HOME_RESYNC_S);
  problems.push(...controller.problems().map((l) => `${l.msg}: ${JSON.stringify(l.err ?? l.reason ?? '')}`));
  await controller.stop();
  events.stop();
  await removeDeployment(ctx, np);

  let peer: RepairResult['peer'];
  if (options.peer) peer = await runPeer(ctx, np, dir, ports);

  // A run limited to some drifts (BENCH_DRIFTS) replaces those rows in the last result of the
  // same mode and keeps the rest, with a note saying which rows come from which run.
  if (only) {
    const previous = await readResult<RepairResult & { runId?: string }>('repair', ctx.smoke);
    if (previous && !('broken' in previous)) {
      const merged = [...previous.rows.filter((r) => !only.includes(r.id)), ...rows].sort(
        (a, b) => driftOrder(a.id) - driftOrder(b.id),
      );
      rows.splice(0, rows.length, ...merged);
      notes.push(
        ...previous.notes,
        `Rows ${only.join(', ')} come from run ${ctx.runId} (${startedAt.slice(0, 16)}); the others from run ${previous.runId ?? '?'} (${previous.startedAt.slice(0, 16)}).`,
      );
      peer ??= previous.peer;
    }
  }

  return {
    benchmark: 'repair',
    smoke: ctx.smoke,
    startedAt,
    durationS: round((now() - started) / 1000),
    trialsPerDrift: trials,
    floor,
    rows,
    ...(peer && { peer }),
    controller: {
      writeCalls: Object.fromEntries(Object.entries(writeCalls).filter(([m]) => WRITE_METHODS.test(m))),
      problems: [...new Set(problems)].slice(0, 20),
    },
    notes,
  };
}

function roundTrial(r: TrialResult): TrialResult {
  const { ms, fullMs, ...rest } = r;
  return {
    ...rest,
    t0: 0,
    actMs: round(r.actMs),
    ...(ms !== undefined && { ms: round(ms, 2) }),
    ...(fullMs !== undefined && { fullMs: round(fullMs, 1) }),
  };
}

export async function waitConverged(
  ctx: RunContext,
  deployment: Deployment,
  prefix: string,
  timeoutMs: number,
): Promise<void> {
  const refs = deployment.docs.map((d) => ({ kind: d.kind, name: d.metadata.name }));
  let last: string[] = [];
  try {
    await waitFor(
      'every resource Synced and Healthy',
      async () => {
        last = await notReady(ctx.redis, prefix, refs);
        return last.length === 0;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (error) {
    throw new Error(`${String(error)}; not ready: ${last.join(', ')}`);
  }
}

/** Every drift's check passes, every service runs its one task and no rollout is in progress. */
async function settleSwarm(
  ctx: RunContext,
  drifts: readonly Drift[],
  services: readonly string[],
): Promise<void> {
  await waitFor(
    'the deployment to be steady',
    async () => {
      for (const drift of drifts) {
        if (!(await drift.check())) return false;
        if (drift.checkFull && !(await drift.checkFull())) return false;
      }
      for (const name of services) {
        const service = await serviceByName(ctx.docker, name);
        const state = service?.UpdateStatus?.State;
        if (state === 'updating' || state === 'rollback_started') return false;
        const tasks = await taskCounts(ctx.docker, name);
        if (tasks.up !== 1 || tasks.desired !== 1) return false;
      }
      return true;
    },
    { timeoutMs: 120_000, intervalMs: 100 },
  );
}

/** The floor: one service create call, and the delivery of its event to a listener. */
async function measureFloor(
  ctx: RunContext,
  events: EventWatcher,
  np: string,
  trials: number,
): Promise<RepairResult['floor']> {
  const total: number[] = [];
  const call: number[] = [];
  const inspect: number[] = [];
  for (let i = 0; i < trials; i++) {
    const name = `${np}-floor-${i}`;
    const seen = new Promise<number>((resolve) => {
      const off = events.onEvent((e) => {
        if (e.type === 'service' && e.action === 'create' && e.name === name) {
          off();
          resolve(e.receivedAt);
        }
      });
    });
    const t0 = now();
    const created = await ctx.docker.createService({
      Name: name,
      Labels: { [RUN_LABEL]: ctx.runId },
      TaskTemplate: { ContainerSpec: { Image: IMAGE, Command: ['sleep', 'infinity'] } },
      Mode: { Replicated: { Replicas: 0 } },
    });
    const returned = now();
    const eventAt = await Promise.race([seen, sleep(5_000).then(() => Number.NaN)]);
    total.push(eventAt - t0);
    call.push(returned - t0);
    const i0 = now();
    await ctx.docker.getService((created as { id: string }).id).inspect();
    inspect.push(now() - i0);
    await ctx.docker.getService((created as { id: string }).id).remove();
    await sleep(100);
  }
  return {
    createAndEvent: summarize(
      total.filter((v) => !Number.isNaN(v)),
      2,
    ),
    createCall: summarize(call, 2),
    inspect: summarize(inspect, 2),
  };
}

async function removeDeployment(ctx: RunContext, np: string): Promise<void> {
  await removeRunObjects(ctx, np);
}

async function runPeer(
  ctx: RunContext,
  np: string,
  dir: string,
  skPorts: readonly number[],
): Promise<NonNullable<RepairResult['peer']>> {
  const trials = ctx.smoke ? 1 : 5;
  const ports = await freePorts(2, new Set(skPorts));
  const peer = new PeerStack(ctx, np, path.join(dir, 'peer'), ports, true);
  await peer.prepare();
  peer.startLoop();
  const events = new EventWatcher(ctx.docker, (e) => concerns(e, [peer.stack]));
  await events.start();
  const services = ['jupyterhubserver', 'nginx', 'notebook'].map((s) => peer.name(s));
  const drifts = makeDrifts(
    {
      docker: ctx.docker,
      hub: peer.name('jupyterhubserver'),
      nginx: peer.name('nginx'),
      notebook: peer.name('notebook'),
      network: peer.name('jupyterhub'),
      spare: peer.name('spare'),
      otherImage: `local/busybox:${np}`,
      configTarget: '/www/proxy.conf',
      changeConfig: (content) => peer.writeConfig(content),
    },
    { managed: false, timeoutMs: Math.round(PEER_PERIOD_MS * 2.5) },
  );
  const byId = new Map(drifts.map((d) => [d.id, d]));
  const repairable = ['service-removed', 'service-scaled', 'env-changed', 'network-removed'];
  // Those it cannot repair run once each, last, and are undone by hand afterwards.
  const once = ['image-changed', 'network-recreated', 'config-changed'];
  const steady = drifts.filter((d) => [...repairable, 'image-changed'].includes(d.id));
  await settleSwarm(ctx, steady, services);
  say('repair: peer stack converged');
  const rows: PeerRow[] = [];
  const ids = ctx.smoke ? ['service-removed'] : [...repairable, ...once];
  for (const id of ids) {
    const drift = byId.get(id);
    if (!drift) continue;
    const single = once.includes(id);
    const raw: TrialResult[] = [];
    let error: string | undefined;
    try {
      for (let trial = 1; trial <= (single ? 1 : trials); trial++) {
        await settleSwarm(ctx, single ? [] : steady, services);
        // Land the change at a uniformly random point of the cron period.
        await sleep(Math.random() * PEER_PERIOD_MS);
        let result = await measureTrial(single ? { ...drift, timeoutMs: 65_000 } : drift, events, trial);
        if (ctx.engineAwayDuring(result.t0 - result.actMs, result.t0 + (result.ms ?? 65_000)))
          result = { ...result, engineRestart: true };
        raw.push(result);
        say(
          `repair: peer ${id} #${trial}: ${result.timedOut ? 'not repaired (timeout)' : `${round(result.ms ?? 0)} ms`}${result.engineRestart ? ' (engine restarted: left out)' : ''}`,
        );
      }
    } catch (e) {
      error = String(e);
      say(`repair: peer ${id}: ${error}`);
    }
    if (id === 'image-changed') {
      await updateService(ctx.docker, peer.name('jupyterhubserver'), (spec) => {
        const task = spec.TaskTemplate as ReturnType<typeof taskTemplate>;
        if (task?.ContainerSpec) task.ContainerSpec.Image = IMAGE;
      }).catch(() => undefined);
    }
    if (id === 'config-changed') await peer.restoreConfig();
    const kept = raw.filter((r) => !r.engineRestart);
    const times = kept.flatMap((r) => (r.ms === undefined ? [] : [r.ms]));
    const never = kept.length > 0 && times.length === 0;
    let reason: string | undefined;
    if (never && id === 'image-changed')
      reason =
        'with --resolve-image never (no registry here) the CLI keeps the running image whenever the compose image equals the com.docker.stack.image label, which an out-of-band change does not touch; the default --resolve-image always would restore it at the cost of a registry query per service per deploy';
    if (never && id === 'network-recreated')
      reason = 'docker stack deploy leaves an existing network as it is; attachable is never restored';
    if (never && id === 'config-changed') {
      const failed = peer.deploys.filter((d) => d.code !== 0).slice(-1)[0];
      reason = `every later deploy fails${failed?.error ? ` (${failed.error})` : ''}, so from then on nothing else is repaired either until the config is renamed`;
    }
    if (error) reason = `${reason ? `${reason}; ` : ''}broken: ${error}`;
    rows.push({
      id,
      title: DRIFT_TITLES[id] ?? id,
      trials: kept.length,
      ...(times.length > 0 && { summary: summarize(times) }),
      timeouts: kept.filter((r) => r.timedOut).length,
      never,
      ...(reason && { reason }),
      raw: raw.map(roundTrial),
    });
  }
  for (const id of ['container-stopped', 'folder-removed', 'quota-changed']) {
    rows.push({
      id,
      title: DRIFT_TITLES[id] ?? id,
      trials: 0,
      timeouts: 0,
      never: true,
      reason:
        id === 'container-stopped'
          ? 'a container outside the Swarm cannot be part of a stack'
          : 'a stack has no home folders or quotas',
    });
  }
  if (ctx.smoke) {
    for (const id of [...repairable, ...once].filter((d) => !ids.includes(d)))
      rows.push({
        id,
        title: DRIFT_TITLES[id] ?? id,
        trials: 0,
        timeouts: 0,
        never: false,
        reason: 'not run in smoke mode',
      });
  }
  events.stop();
  const deploys = peer.deploys;
  await peer.remove();
  return {
    trialsPerDrift: trials,
    periodS: PEER_PERIOD_MS / 1000,
    command: peer.commandLine,
    deploys: {
      n: deploys.length,
      failed: deploys.filter((d) => d.code !== 0).length,
      ms: summarize(deploys.map((d) => d.ms)),
    },
    rows,
  };
}
