/**
 * The chaos soak (issue 7):
 *
 *   npm run build && npm run bench:chaos                  10 minutes
 *   npm run bench:chaos -- --minutes 2 --seed 1234        shorter, or a replay of an earlier run's choices
 *
 * The example deployment (renamed for the run, with the notebook service, a spare network, users
 * and a stand-in xfs_quota) runs under a controller process started from dist/, against a private
 * redis-server. Every 1–3 s (seeded: the seed is printed and recorded, so the same sequence of
 * changes can be replayed) one random out-of-band change is made: a drift of the repair benchmark,
 * a restart of the private Redis, or a `kill -9` of the controller (started again, as the Swarm
 * would). The controller is stopped (SIGSTOP) while a change is made, so every Docker write event
 * is either the change's or the controller's. At the end it must converge, and:
 *   - zero lasting drift: every resource Synced and Healthy, every drift's check passes, `swarmkeeper
 *     diff` finds nothing, and no write in a quiet minute afterwards;
 *   - zero user folders lost: every folder exists, and the marker file put in each one is intact
 *     unless that folder was the one removed;
 *   - zero unmanaged objects changed: look-alike decoys (same labels minus the managed one) inspect
 *     exactly as before;
 *   - every write accounted for: each write event of the controller is matched to an earlier drift
 *     whose repair may write that object, within that drift's budget of writes.
 * Writes bench/results/chaos.json and rewrites BENCHMARKS.md; exits 1 when a check fails.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { PrivateRedis } from '../test/support/redis-server.js';
import { swarmkeeper } from './lib/cli.js';
import { IMAGE, RUN_LABEL, RunContext, XFS_STAND_IN } from './lib/context.js';
import { ControllerProcess } from './lib/controller.js';
import { deploymentFor, tagOtherImage, type Deployment } from './lib/deployment.js';
import { serviceByName, taskCounts, taskTemplate } from './lib/docker.js';
import {
  ALL_DRIFTS,
  makeDrifts,
  swarmkeeperTarget,
  type Drift,
  type DriftId,
  type DriftTarget,
} from './lib/drifts.js';
import { classify, concerns, EventWatcher, type BenchEvent } from './lib/events.js';
import { writeResult } from './lib/results.js';
import { waitConverged } from './repair.js';
import { writeReport } from './report.js';
import { errorMessage, now, round, say, sleep, summarize, waitFor, type Summary } from './lib/util.js';

const MANAGED_LABEL = 'io.swarmkeeper.managed';
const MARKER = '.chaos-marker';

/** mulberry32: small, seedable, good enough to pick changes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type ChangeKind = DriftId | 'redis-restart' | 'controller-kill';

const KINDS: readonly ChangeKind[] = [...ALL_DRIFTS, 'redis-restart', 'controller-kill'];

export interface ChaosChange {
  readonly n: number;
  readonly kind: ChangeKind;
  /** The user whose folder or quota changed. */
  readonly user?: string;
  /** Seconds from the start of the chaos phase, rounded for the report. */
  readonly atS: number;
  /** The same, exact: a repair can follow its change within the rounding of `atS`. */
  readonly atMs: number;
  readonly actMs: number;
  readonly error?: string;
  /** Controller write events matched to this change. */
  writes: number;
}

export interface ChaosResult {
  readonly benchmark: 'chaos';
  readonly startedAt: string;
  readonly seed: number;
  readonly plannedSeconds: number;
  readonly chaosSeconds: number;
  readonly loadAverage: { readonly start: number[]; readonly end: number[]; readonly samples: number[][] };
  readonly users: number;
  readonly changes: number;
  readonly byKind: Record<string, { made: number; failed: number; writes: number; writesPerChange: number }>;
  readonly convergedAfterS?: number;
  readonly checks: {
    readonly lastingDrift: { readonly ok: boolean; readonly detail: readonly string[] };
    readonly foldersLost: { readonly ok: boolean; readonly detail: readonly string[] };
    readonly unmanagedChanged: { readonly ok: boolean; readonly detail: readonly string[] };
    readonly writesAccounted: {
      readonly ok: boolean;
      readonly controllerWrites: number;
      readonly changeWrites: number;
      readonly unexplained: readonly string[];
      readonly quietMinuteWrites: number;
    };
  };
  readonly controller: {
    readonly restarts: number;
    readonly warnLines: number;
    readonly errorLines: number;
    readonly problems: readonly string[];
    readonly startMs: Summary;
  };
  readonly engineOutagesS: readonly number[];
  readonly ok: boolean;
  readonly timeline: readonly ChaosChange[];
  /** A reading of the figures added after the run, when there is one. */
  readonly notes?: readonly string[];
  /** Every controller write event and the change it was matched to. */
  readonly writeLog: readonly string[];
}

interface Args {
  seconds: number;
  seed: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seconds: 600, seed: randomBytes(4).readUInt32BE(0) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${arg} needs a number`);
      return v;
    };
    if (arg === '--seconds') args.seconds = value();
    else if (arg === '--minutes') args.seconds = value() * 60;
    else if (arg === '--seed') args.seed = value() >>> 0;
    else throw new Error(`unknown argument ${arg}`);
  }
  return args;
}

/** One write a change's repair may make: an object and the actions that would be it. */
type Slot = readonly [object: string, actions: readonly string[]];

/**
 * The writes each change's repair may make, one slot per write. A repair the controller restarts
 * after a `kill -9` must still fit: it resumes rather than starting over.
 */
function budgetOf(kind: ChangeKind, d: Deployment): Slot[] {
  const n = d.names;
  const update = ['update'];
  switch (kind) {
    case 'service-removed':
      return [[n.nginx, ['create']]];
    case 'service-scaled':
    case 'image-changed':
    case 'env-changed':
      return [[n.hub, update]];
    case 'network-removed':
      return [
        [n.spare, ['create']],
        [n.notebook, update],
      ];
    case 'network-recreated': {
      // Detach the three services, remove, create, reattach them; the container outside the
      // Swarm, which could not stay on it, back on it or recreated (stop, remove, create, start).
      const container = ['connect', 'disconnect', 'stop', 'destroy', 'create', 'start'];
      return [
        [n.network, ['remove', 'destroy']],
        [n.network, ['create']],
        ...[n.hub, n.nginx, n.notebook].flatMap((s): Slot[] => [
          [s, update],
          [s, update],
        ]),
        ...Array.from({ length: 4 }, (): Slot => [n.container, container]),
      ];
    }
    case 'config-changed':
      // the new config version, nginx onto it, the old version removed
      return [
        [n.nginxConf, ['create']],
        [n.nginx, update],
        [n.nginxConf, ['remove']],
      ];
    case 'container-stopped':
      return [[n.container, ['start']]];
    default:
      return [];
  }
}

/** How long after a change's calls return the engine may still report them. */
const OWN_EVENT_LAG_MS = 3_000;

/** The writes a change makes itself (see makeDrifts), one slot per write event. */
function ownWritesOf(kind: ChangeKind, d: Deployment): Slot[] {
  const n = d.names;
  switch (kind) {
    case 'service-removed':
      return [[n.nginx, ['remove']]];
    case 'service-scaled':
    case 'image-changed':
    case 'env-changed':
      return [[n.hub, ['update']]];
    case 'network-removed':
      return [
        [n.notebook, ['update']],
        [n.spare, ['remove', 'destroy']],
      ];
    case 'network-recreated':
      return [
        ...[n.hub, n.nginx, n.notebook].flatMap((s): Slot[] => [
          [s, ['update']],
          [s, ['update']],
        ]),
        [n.network, ['remove', 'destroy']],
        [n.network, ['create']],
        [n.container, ['disconnect']],
      ];
    case 'container-stopped':
      return [[n.container, ['stop']]];
    default:
      return [];
  }
}

/** A write event's object: the config name (versioned configs carry a suffix) or the object's own. */
function objectOf(event: BenchEvent, d: Deployment): string {
  const name = (event.type === 'volume' ? event.id : event.name).replace(/^\//, '');
  if (event.type === 'config' && name.startsWith(d.names.nginxConf)) return d.names.nginxConf;
  return name;
}

/**
 * Write events that are an API call rather than the engine's own doing. Left out: Swarm's service
 * events about rollout progress (they carry updatestate.*) and the allocator's update right after a
 * service is created, the local copy of an overlay network coming and going with the tasks on it
 * (scope local), a plain container joining or leaving its networks as it starts or stops, and
 * `volume create` for a volume that already existed (a container mounting it by name).
 */
function isWrite(event: BenchEvent, context: WriteContext): boolean {
  if (classify(event, context.plain) !== 'write') return false;
  if (event.type === 'service' && event.action === 'update') {
    if (event.attributes['updatestate.new'] !== undefined) return false;
    const created = context.serviceCreates.find((e) => e.id === event.id && e.timeNano <= event.timeNano);
    const firstUpdate = context.serviceUpdates.find(
      (e) => e.id === event.id && created !== undefined && e.timeNano >= created.timeNano,
    );
    if (created && firstUpdate === event && event.timeNano - created.timeNano < 2e9) return false;
  }
  if (event.type === 'network' && event.scope === 'local' && event.attributes.type === 'overlay')
    return false;
  if (event.type === 'network' && (event.action === 'connect' || event.action === 'disconnect')) {
    const container = event.attributes.container ?? '';
    if (context.lifecycle.some((e) => e.id === container && Math.abs(e.timeNano - event.timeNano) < 1e9))
      return false;
  }
  if (event.type === 'volume' && event.action === 'create') {
    const destroyed = context.volumeDestroys.some((e) => e.id === event.id && e.timeNano < event.timeNano);
    if (context.volumesAtStart.has(event.id) && !destroyed) return false;
  }
  return true;
}

interface WriteContext {
  readonly plain: ReadonlySet<string>;
  readonly lifecycle: readonly BenchEvent[];
  readonly serviceCreates: readonly BenchEvent[];
  readonly serviceUpdates: readonly BenchEvent[];
  readonly volumeDestroys: readonly BenchEvent[];
  readonly volumesAtStart: ReadonlySet<string>;
}

interface Decoy {
  readonly what: string;
  readonly read: () => Promise<string>;
  before: string;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const command = `npm run bench:chaos -- --seconds ${args.seconds} --seed ${args.seed}`;
  const redisServer = await PrivateRedis.start({ persist: true });
  const ctx = new RunContext({ smoke: false, redisUrl: redisServer.url });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      say('cleaning up');
      // Controllers first: a running one would recreate what the cleanup removes.
      await ControllerProcess.stopAll();
      if (!redisServer.running) await redisServer.restart().catch(() => undefined);
      await ctx.close();
      await redisServer.destroy();
    })());
  const onSignal = (): void => {
    say('interrupted');
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: ChaosResult;
  try {
    await ctx.open();
    say(`chaos ${ctx.runId}: seed ${args.seed}, ${args.seconds} s, redis ${ctx.redisUrl} (private)`);
    result = await runChaos(ctx, redisServer, args);
    await writeResult('chaos', args.seconds < 600, {
      ...result,
      runId: ctx.runId,
      command,
      meta: {
        machine: ctx.machine,
        app: ctx.app,
        privateRedis: true,
        loadAverageAtStart: result.loadAverage.start,
      },
    });
  } finally {
    await close();
  }
  await writeReport();
  const c = result.checks;
  say(
    `lasting drift ${c.lastingDrift.ok ? 'none' : 'FOUND'}; folders lost ${c.foldersLost.ok ? 'none' : 'SOME'}; unmanaged changed ${c.unmanagedChanged.ok ? 'none' : 'SOME'}; writes ${c.writesAccounted.controllerWrites}, unexplained ${c.writesAccounted.unexplained.length}`,
  );
  say(result.ok ? 'chaos: every check passed' : 'chaos: a check FAILED');
  return result.ok ? 0 : 1;
}

async function runChaos(ctx: RunContext, redisServer: PrivateRedis, args: Args): Promise<ChaosResult> {
  const startedAt = new Date().toISOString();
  const loadStart = loadavg().map((v) => round(v, 2));
  const random = seededRandom(args.seed);
  const deployment = await deploymentFor(ctx, 'chaos', { extras: true, quotaDriver: 'xfs', extraUsers: 4 });
  const { np, dir } = deployment;
  const otherImage = await tagOtherImage(ctx, deployment);

  const events = new EventWatcher(ctx.docker, (e) => concerns(e, [np]));
  await events.start();
  ctx.onCleanup('event watcher', () => Promise.resolve(events.stop()), 'stop');

  const prefix = ctx.newPrefix('chaos');
  const statePath = path.join(dir, 'xfs-state.json');
  const options = {
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: 10,
    env: {
      SWARMKEEPER_XFS_QUOTA: XFS_STAND_IN,
      XFS_QUOTA_STATE: statePath,
      XFS_QUOTA_LOG: path.join(dir, 'xfs.log'),
    },
    logFile: ctx.logFile('chaos-controller'),
    keepMinLevel: 30,
  };
  let controller = new ControllerProcess(options);
  const retired: ControllerProcess[] = [];
  const startMs: number[] = [];
  const startController = async (): Promise<void> => {
    const t = now();
    controller = new ControllerProcess(options);
    await controller.start();
    startMs.push(now() - t);
  };
  await startController();
  ctx.onCleanup('chaos controller', () => ControllerProcess.stopAll(), 'stop');

  say(`chaos: applying the example (${deployment.docs.length} resources, prefix ${np})`);
  const applied = await swarmkeeper(['apply', '-f', deployment.file], { redisUrl: ctx.redisUrl, prefix });
  if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
  await waitConverged(ctx, deployment, prefix, 240_000);
  say('chaos: deployment converged');

  // Each user's folder, e-mail and quota, as the drifts' checks read them.
  const userDocs = deployment.docs.filter((d) => d.kind === 'User');
  const homes = userDocs.map((doc) => {
    const quota = typeof doc.spec.quota === 'string' ? /^(\d+)Gi$/.exec(doc.spec.quota) : null;
    return {
      root: deployment.root,
      user: doc.metadata.name,
      email: String(doc.spec.email),
      uid: 1000,
      gid: 100,
      mode: 0o770,
      quotaBytes: (quota ? Number(quota[1]) : 1) * 2 ** 30,
      statePath,
    };
  });
  const redisKey = `${prefix}:desired:Config:${deployment.names.nginxConf}`;
  const originalConfig = await ctx.redis.hget(redisKey, 'data');
  const target: DriftTarget = {
    ...swarmkeeperTarget(ctx.docker, ctx.redis, deployment, prefix, otherImage),
    // Only a short wait: in chaos the services may be broken by an earlier change on purpose.
    steadyTimeoutMs: 5_000,
  };
  const dockerDrifts = new Map(makeDrifts(target, { managed: true, timeoutMs: 0 }).map((d) => [d.id, d]));
  const homeDrifts = new Map(
    homes.map((home) => [
      home.user,
      new Map(
        makeDrifts({ ...target, home }, { managed: true, timeoutMs: 0 })
          .filter((d) => d.id === 'folder-removed' || d.id === 'quota-changed')
          .map((d) => [d.id, d]),
      ),
    ]),
  );

  // Marker files: data that must survive everything but the removal of its own folder.
  const markers = new Map<string, string>();
  for (const home of homes) {
    const content = `${home.user} ${randomBytes(8).toString('hex')}\n`;
    await writeFile(path.join(home.root, home.user, MARKER), content);
    markers.set(home.user, content);
  }

  const decoys = await createDecoys(ctx, deployment, prefix);
  for (const decoy of decoys) decoy.before = await decoy.read();
  await controller.idle(500);

  const volumesAtStart = new Set(
    ((await ctx.docker.listVolumes()).Volumes ?? []).map((v) => v.Name).filter((name) => name.startsWith(np)),
  );

  // The chaos phase.
  const timeline: ChaosChange[] = [];
  const actWindows: { from: number; to: number; own: Slot[] }[] = [];
  const loadSamples: number[][] = [];
  const chaosStart = Date.now();
  const chaosStartMono = now();
  const deadline = chaosStartMono + args.seconds * 1000;
  let lastLoad = chaosStartMono;
  say(`chaos: ${args.seconds} s of changes, seed ${args.seed}`);
  for (let n = 1; now() < deadline; n++) {
    await sleep(1000 + random() * 2000);
    const kind = KINDS[Math.floor(random() * KINDS.length)] ?? 'service-removed';
    const user = homes[Math.floor(random() * homes.length)]?.user ?? 'alice';
    const extra = random();
    const atMs = now() - chaosStartMono;
    const atS = round(atMs / 1000);
    const t0 = now();
    const from = Date.now();
    let error: string | undefined;
    try {
      if (kind === 'redis-restart') {
        await redisServer.stop(extra < 0.5 ? 'kill' : 'term');
        await sleep(500 + extra * 5000);
        await redisServer.restart();
      } else if (kind === 'controller-kill') {
        await controller.kill();
        retired.push(controller);
        await sleep(200 + extra * 2000);
        await startController();
      } else {
        const drift: Drift | undefined =
          kind === 'folder-removed' || kind === 'quota-changed'
            ? homeDrifts.get(user)?.get(kind)
            : dockerDrifts.get(kind);
        if (!drift) throw new Error(`no drift ${kind}`);
        // The controller is stopped while the change is made, so no write of its falls in the window.
        signal(controller, 'SIGSTOP');
        try {
          await drift.act(n);
        } finally {
          // The window closes before the controller runs again.
          actWindows.push({ from, to: Date.now(), own: ownWritesOf(kind, deployment) });
          signal(controller, 'SIGCONT');
        }
        if (kind === 'folder-removed') markers.delete(user);
      }
    } catch (e) {
      error = errorMessage(e).split('\n')[0]?.slice(0, 200);
    }
    const actMs = round(now() - t0);
    const home = kind === 'folder-removed' || kind === 'quota-changed';
    timeline.push({ n, kind, ...(home && { user }), atS, atMs, actMs, ...(error && { error }), writes: 0 });
    say(`chaos #${n} +${atS}s ${kind}${home ? ` ${user}` : ''} (${actMs} ms)${error ? `: ${error}` : ''}`);
    if (now() - lastLoad > 60_000) {
      loadSamples.push(loadavg().map((v) => round(v, 2)));
      lastLoad = now();
    }
  }
  const chaosSeconds = round((now() - chaosStartMono) / 1000);

  // The desired config back to the manifest's, so `swarmkeeper diff -f` can compare with the file.
  if (originalConfig !== null) {
    const atMs = now() - chaosStartMono;
    await ctx.redis.hset(redisKey, 'data', originalConfig);
    timeline.push({
      n: timeline.length + 1,
      kind: 'config-changed',
      atS: round(atMs / 1000),
      atMs,
      actMs: 0,
      writes: 0,
    });
  }
  say('chaos: changes stopped; waiting for convergence');
  const convergeStart = now();
  const lasting: string[] = [];
  let convergedAfterS: number | undefined;
  // The config's own check compares with the last content the chaos wrote, not the restored one.
  const configRepaired: Drift = {
    id: 'config-restored',
    title: 'config content as desired',
    pollMs: 0,
    timeoutMs: 0,
    act: () => Promise.resolve(now()),
    check: async () => {
      const service = await serviceByName(ctx.docker, deployment.names.nginx);
      const ref = taskTemplate(service)?.ContainerSpec?.Configs?.find(
        (c) => c.File?.Name === target.configTarget,
      );
      if (!ref?.ConfigID) return false;
      const config = await ctx.docker.getConfig(ref.ConfigID).inspect();
      return Buffer.from(config.Spec?.Data ?? '', 'base64').toString('utf8') === originalConfig;
    },
  };
  const allDrifts = [
    ...[...dockerDrifts.values()].filter((d) => d.id !== 'config-changed'),
    configRepaired,
    ...[...homeDrifts.values()].flatMap((m) => [...m.values()]),
  ];
  try {
    await waitConverged(ctx, deployment, prefix, 300_000);
    await waitFor(
      'every drift repaired and every service steady',
      async () => (await failingChecks(ctx, deployment, allDrifts)).length === 0,
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    await controller.idle(1000);
    convergedAfterS = round((now() - convergeStart) / 1000);
    say(`chaos: converged after ${convergedAfterS} s`);
  } catch (e) {
    lasting.push(`no convergence: ${errorMessage(e)}`);
  }
  lasting.push(...(await failingChecks(ctx, deployment, allDrifts)));
  const diff = await swarmkeeper(['diff', '-f', deployment.file], { redisUrl: ctx.redisUrl, prefix });
  if (diff.code !== 0) lasting.push(`swarmkeeper diff exited ${diff.code}: ${diff.stdout.slice(0, 500)}`);

  // A quiet minute: a converged controller writes nothing.
  const quietFrom = Date.now();
  await sleep(60_000);
  const quietTo = Date.now();

  // Folders and markers.
  const lost: string[] = [];
  for (const home of homes) {
    const folder = path.join(home.root, home.user);
    const isDir = await stat(folder).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      lost.push(`${home.user}: folder missing`);
      continue;
    }
    const expected = markers.get(home.user);
    if (expected === undefined) continue;
    const found = await readFile(path.join(folder, MARKER), 'utf8').catch(() => undefined);
    if (found !== expected) lost.push(`${home.user}: marker ${found === undefined ? 'missing' : 'changed'}`);
  }

  // Decoys.
  const changed: string[] = [];
  for (const decoy of decoys) {
    const after = await decoy.read().catch((e: unknown) => `gone: ${errorMessage(e)}`);
    if (after !== decoy.before) changed.push(`${decoy.what}: ${after.slice(0, 300)}`);
  }

  // Write accounting, by engine time.
  const plain = new Set(
    events.events
      .filter((e) => e.type === 'container' && e.attributes['com.docker.swarm.service.name'] === undefined)
      .map((e) => e.id),
  );
  const ms = (e: BenchEvent): number => e.timeNano / 1e6;
  const of = (type: string, actions: readonly string[]): BenchEvent[] =>
    events.events.filter((e) => e.type === type && actions.includes(e.action));
  const context: WriteContext = {
    plain,
    lifecycle: of('container', ['start', 'die', 'destroy']).filter((e) => plain.has(e.id)),
    serviceCreates: of('service', ['create']),
    serviceUpdates: of('service', ['update']),
    volumeDestroys: of('volume', ['destroy']),
    volumesAtStart,
  };
  const writes = events.events.filter((e) => ms(e) >= chaosStart && ms(e) <= quietTo && isWrite(e, context));
  // A change's own writes: those inside its window, and those it makes that the engine reports a
  // little after the call returned (Swarm's events come from its store watch, later under load).
  const own: BenchEvent[] = [];
  const controllerWrites: BenchEvent[] = [];
  for (const event of writes) {
    const t = ms(event);
    const action = event.action.split(':')[0] ?? event.action;
    const object = objectOf(event, deployment);
    const act = actWindows.find(
      (w) =>
        t >= w.from &&
        t <= w.to + OWN_EVENT_LAG_MS &&
        w.own.some(([o, a]) => o === object && a.includes(action)),
    );
    if (act)
      act.own.splice(
        act.own.findIndex(([o, a]) => o === object && a.includes(action)),
        1,
      );
    if (act || actWindows.some((w) => t >= w.from && t <= w.to)) own.push(event);
    else controllerWrites.push(event);
  }
  // Newest first: a write is put down to the latest change that explains it; an older change
  // whose repair was merged into a later one's keeps its slots unused.
  const remaining = timeline.map((c) => ({ change: c, slots: budgetOf(c.kind, deployment) })).reverse();
  const unexplained: string[] = [];
  const writeLog: string[] = [];
  for (const event of controllerWrites) {
    const object = objectOf(event, deployment);
    const at = ms(event) - chaosStart;
    const action = event.action.split(':')[0] ?? event.action;
    let match: (typeof remaining)[number] | undefined;
    let slot = -1;
    for (const r of remaining) {
      if (r.change.atMs > at) continue;
      slot = r.slots.findIndex(([o, actions]) => o === object && actions.includes(action));
      if (slot >= 0) {
        match = r;
        break;
      }
    }
    const line = `+${round(at / 1000)}s ${event.type} ${action} ${object}`;
    if (match) {
      match.slots.splice(slot, 1);
      match.change.writes++;
      writeLog.push(`${line} → #${match.change.n} ${match.change.kind}`);
    } else {
      unexplained.push(line);
      writeLog.push(`${line} → unexplained`);
    }
  }
  const quietWrites = controllerWrites.filter((e) => ms(e) >= quietFrom).length;
  if (quietWrites > 0) lasting.push(`${quietWrites} write(s) in the quiet minute after convergence`);

  const byKind: ChaosResult['byKind'] = {};
  for (const kind of KINDS) {
    const list = timeline.filter((c) => c.kind === kind);
    const made = list.filter((c) => c.error === undefined).length;
    const w = list.reduce((a, c) => a + c.writes, 0);
    byKind[kind] = {
      made,
      failed: list.length - made,
      writes: w,
      writesPerChange: made > 0 ? round(w / made, 2) : 0,
    };
  }
  const all = [...retired, controller];
  const lines = all.flatMap((c) => c.problems());
  const problems = [
    ...new Set(lines.map((l) => `${l.msg}${typeof l.code === 'string' ? ` ${l.code}` : ''}`)),
  ].slice(0, 30);
  const checks: ChaosResult['checks'] = {
    lastingDrift: { ok: lasting.length === 0, detail: lasting },
    foldersLost: { ok: lost.length === 0, detail: lost },
    unmanagedChanged: { ok: changed.length === 0, detail: changed },
    writesAccounted: {
      ok: unexplained.length === 0,
      controllerWrites: controllerWrites.length,
      changeWrites: own.length,
      unexplained: unexplained.slice(0, 100),
      quietMinuteWrites: quietWrites,
    },
  };
  return {
    benchmark: 'chaos',
    startedAt,
    seed: args.seed,
    plannedSeconds: args.seconds,
    chaosSeconds,
    loadAverage: { start: loadStart, end: loadavg().map((v) => round(v, 2)), samples: loadSamples },
    users: homes.length,
    changes: timeline.length,
    byKind,
    ...(convergedAfterS !== undefined && { convergedAfterS }),
    checks,
    controller: {
      restarts: retired.length,
      warnLines: lines.filter((l) => l.level === 40).length,
      errorLines: lines.filter((l) => l.level >= 50).length,
      problems,
      startMs: summarize(startMs),
    },
    engineOutagesS: ctx.outages.map((o) => round((o.to - o.from) / 1000)),
    ok: Object.values(checks).every((c) => c.ok),
    timeline,
    writeLog: writeLog.slice(0, 3000),
  };
}

function signal(controller: ControllerProcess, name: NodeJS.Signals): void {
  try {
    process.kill(controller.pid, name);
  } catch {
    // not running (killed a moment ago): nothing to stop
  }
}

/** Drifts whose check fails, and services not running their one task or mid-rollout. */
async function failingChecks(ctx: RunContext, d: Deployment, drifts: readonly Drift[]): Promise<string[]> {
  const failing: string[] = [];
  for (const drift of drifts) {
    const ok = await drift.check().catch(() => false);
    const full = ok && drift.checkFull ? await drift.checkFull().catch(() => false) : ok;
    if (!ok || !full) failing.push(`${drift.title}${ok ? ` (${drift.fullTitle ?? 'full check'})` : ''}`);
  }
  for (const name of [d.names.hub, d.names.nginx, d.names.notebook]) {
    const service = await serviceByName(ctx.docker, name);
    const state = service?.UpdateStatus?.State;
    const tasks = await taskCounts(ctx.docker, name);
    if (state === 'updating' || state === 'rollback_started' || tasks.up !== 1 || tasks.desired !== 1)
      failing.push(`${name}: ${state ?? 'steady'}, ${tasks.up}/${tasks.desired} tasks`);
  }
  return failing;
}

/**
 * Look-alikes in the run's name prefix carrying the managed objects' labels minus the managed
 * one: a service like the hub, a network like the deployment's, and a volume named like a
 * per-user volume. Their inspect output is compared before and after.
 */
async function createDecoys(ctx: RunContext, d: Deployment, prefix: string): Promise<Decoy[]> {
  const docker = ctx.docker;
  const strip = (labels: Record<string, string> | undefined): Record<string, string> => {
    const out = { ...labels };
    delete out[MANAGED_LABEL];
    return out;
  };
  const hub = await serviceByName(docker, d.names.hub);
  if (!hub?.Spec) throw new Error('the hub service is missing');
  const serviceName = `${d.np}-decoy-jupyterhubserver`;
  const { id: serviceId } = (await docker.createService({
    ...structuredClone(hub.Spec),
    Name: serviceName,
    Labels: strip(hub.Spec.Labels),
    Mode: { Replicated: { Replicas: 0 } },
    TaskTemplate: { ContainerSpec: { Image: IMAGE, Command: ['sleep', 'infinity'] } },
    EndpointSpec: {},
  })) as { id: string };
  const network = await docker.getNetwork(d.names.network).inspect();
  const networkName = `${d.np}-decoy-jupyterhub`;
  const created = await docker.createNetwork({
    Name: networkName,
    Driver: 'overlay',
    Attachable: false,
    Labels: strip(network.Labels),
  });
  const volumeName = `${d.np}-jupyterhub-user-zed`;
  const { Volumes } = await docker.listVolumes();
  const userVolume = (Volumes ?? []).find((v) => v.Name.startsWith(`${d.np}-jupyterhub-user-`));
  await docker.createVolume({
    Name: volumeName,
    Labels: { ...strip(userVolume?.Labels ?? {}), 'io.swarmkeeper.owner': prefix, [RUN_LABEL]: ctx.runId },
  });
  const json = (value: unknown): string => JSON.stringify(value);
  return [
    {
      what: `service ${serviceName}`,
      read: async () => json(await docker.getService(serviceId).inspect()),
      before: '',
    },
    {
      what: `network ${networkName}`,
      read: async () => json(await docker.getNetwork(created.id).inspect()),
      before: '',
    },
    {
      what: `volume ${volumeName}`,
      read: async () => json(await docker.getVolume(volumeName).inspect()),
      before: '',
    },
  ];
}

const code = await main().catch((error: unknown) => {
  say(`chaos failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 2;
});
process.exit(code);
