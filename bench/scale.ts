/**
 * 3. Scale: 1,000, 5,000 and 10,000 Users on one HomeFolders (stand-in xfs_quota on a temp root,
 * e-mail files on, plain names, no per-user Docker volume). For each size: `swarmkeeper apply -f`
 * of one multi-document file; first convergence of a controller started on that store (every
 * folder, e-mail file and quota in place, every User Synced); then per steady-state resync: CPU
 * time, Docker API calls (the app's DockerCallCounter), Redis commands (INFO commandstats of the
 * private Redis), filesystem syscalls (strace -f), and RSS. The controller runs in its own process.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { runCommand, swarmkeeper } from './lib/cli.js';
import { XFS_STAND_IN, type RunContext } from './lib/context.js';
import { ControllerProcess, type ControllerStats } from './lib/controller.js';
import { writeUsersManifest } from './lib/deployment.js';
import { newestProfile, summarizeProfile, type ProfileSummary } from './lib/profile.js';
import { analyse, sampleWindow, type Burst, type Window } from './lib/sampler.js';
import { countSynced } from './lib/status.js';
import { straceAvailable, straceDuring, type StraceCounts } from './lib/strace.js';
import { EventWatcher } from './lib/events.js';
import { now, round, say, sleep, summarize, waitFor, type Summary } from './lib/util.js';
import { DEFAULT_FOLDERS_PER_RESYNC, resyncsPerFullSweep } from '../src/homes/sweep-window.js';

export interface ScaleRow {
  readonly users: number;
  readonly manifestBytes: number;
  /** `swarmkeeper apply -f` wall time: first apply (all created) and again (all unchanged). */
  readonly applyMs: number;
  readonly reapplyMs: number;
  readonly firstConvergence: {
    /** Controller process spawned → every User Synced. */
    readonly fromSpawnMs: number;
    /** Controller ready (first sync queued) → every User Synced. */
    readonly fromReadyMs: number;
    readonly folders: number;
    readonly emailFiles: number;
    readonly quotas: number;
    readonly quotaRuns: number;
    /** One run of the stand-in xfs_quota (a node script, so mostly node's start-up), median of 3. */
    readonly standInRunMs: number;
    readonly cpuMs: number;
    readonly dockerCalls: number;
    readonly rssMbAfter: number;
  };
  readonly steady: {
    readonly resyncSeconds: number;
    readonly resyncs: number;
    readonly cpuMs: Summary;
    readonly dockerCalls: Summary;
    readonly dockerWrites: number;
    readonly dockerByMethod: Readonly<Record<string, number>>;
    readonly redisCommands: Summary;
    readonly redisByCommandPerResync: Readonly<Record<string, number>>;
    readonly idleCpuMsPerS: number;
    readonly maxRssMb: number;
    /** Bursts that were not a plain resync: resyncs that also listed the store, and relists set off by engine events. */
    readonly otherBursts: readonly {
      kind: string;
      /** Seconds into the window, as the resync bursts' `startS`. */
      startS: number;
      cpuMs: number;
      dockerCalls: number;
      redisCommands: number;
    }[];
    /**
     * The listing of the store made when the notification subscription is live again, measured by
     * dropping it (CLIENT KILL TYPE pubsub on the bench's private Redis); absent when none was seen.
     */
    readonly relistOnResubscribe?: { readonly cpuMs: number; readonly redisCommands: number };
    /** Events on the shared engine during the window, most of them other people's. */
    readonly foreignEngineEvents: number;
    readonly bursts: readonly Burst[];
    readonly window: Omit<Window, 'bursts' | 'firstSample' | 'lastSample'>;
  };
  readonly fsSyscalls?: {
    readonly perResync: Summary;
    readonly byCall: Readonly<Record<string, number>>;
    readonly childProcessesPerResync: number;
    readonly childSyscallsPerResync: number;
    readonly tracedBursts: readonly (StraceCounts & { kind: string })[];
  };
  readonly fsSyscallsNote?: string;
  readonly peakRssMb: number;
  readonly problems: readonly string[];
}

export interface ScaleResult {
  readonly benchmark: 'scale';
  readonly smoke: boolean;
  readonly startedAt: string;
  readonly resyncSeconds: number;
  readonly rows: readonly ScaleRow[];
  readonly profile?: { readonly users: number; readonly resyncs: number; readonly summary: ProfileSummary };
  readonly notes: readonly string[];
}

export async function runScale(ctx: RunContext, options: { sizes?: number[] }): Promise<ScaleResult> {
  const startedAt = new Date().toISOString();
  const sizes = options.sizes ?? (ctx.smoke ? [1000] : [1000, 5000, 10000]);
  // The default period in a full run; a shorter one in smoke mode so a window holds several.
  const resyncS = ctx.smoke ? 10 : 30;
  const rows: ScaleRow[] = [];
  const notes: string[] = [];
  let profile: ScaleResult['profile'];
  for (const users of sizes) {
    const largest = users === Math.max(...sizes);
    const { row, profiled } = await runSize(ctx, users, largest, resyncS);
    rows.push(row);
    if (profiled) profile = profiled;
  }
  notes.push(
    `Steady state is measured with SWARMKEEPER_RESYNC_SECONDS=${resyncS}; a resync's cost does not depend on the period. Bursts of work are told apart by what they did: a resync runs one quota \`report\`; it lists the store's records only when the store's change counter moved, and on every 20th resync as the safety net for lost notifications (a "resync+list" burst, rarely inside the window); the listing made when the notification subscription is live again after a drop is measured apart by dropping it; other bursts are relists set off by Docker events, mostly other people's on the shared engine.`,
    'CPU is process.cpuUsage() read in the controller over IPC every 100 ms; each read costs the controller about 0.1 ms, included in the figures.',
  );
  return {
    benchmark: 'scale',
    smoke: ctx.smoke,
    startedAt,
    resyncSeconds: resyncS,
    rows,
    ...(profile && { profile }),
    notes,
  };
}

async function runSize(
  ctx: RunContext,
  users: number,
  profileIt: boolean,
  resyncS: number,
): Promise<{ row: ScaleRow; profiled?: NonNullable<ScaleResult['profile']> }> {
  say(`scale: ${users} users`);
  const dir = path.join(ctx.tmp, `scale-${users}`);
  const root = path.join(dir, 'nfs');
  await mkdir(root, { recursive: true });
  const prefix = ctx.newPrefix(`scale${users}`);
  const file = path.join(dir, 'users.yaml');
  const names = await writeUsersManifest(file, { homes: 'homes', root, count: users });
  const manifestBytes = (await readFile(file)).length;
  const cli = { redisUrl: ctx.redisUrl, prefix };
  const applied = await swarmkeeper(['apply', '-f', file], cli);
  if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr.slice(0, 2000)}`);
  const reapplied = await swarmkeeper(['apply', '-f', file], cli);
  if (reapplied.code !== 0) throw new Error(`re-apply failed: ${reapplied.stderr.slice(0, 2000)}`);
  say(`scale: ${users}: apply ${round(applied.ms)} ms, re-apply ${round(reapplied.ms)} ms`);

  const statePath = path.join(dir, 'xfs-state.json');
  const xfsLog = path.join(dir, 'xfs.log');
  const env = { SWARMKEEPER_XFS_QUOTA: XFS_STAND_IN, XFS_QUOTA_STATE: statePath, XFS_QUOTA_LOG: xfsLog };
  const controller = new ControllerProcess({
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: resyncS,
    env,
    logFile: ctx.logFile(`scale-${users}`),
    keepMinLevel: 40,
  });
  const refs = [{ kind: 'HomeFolders', name: 'homes' }, ...names.map((name) => ({ kind: 'User', name }))];
  let converged = 0;
  let standInRunMs = 0;
  let row: ScaleRow | undefined;
  try {
    await controller.start();
    converged = await waitFor(
      `${users} users Synced`,
      async () => ((await countSynced(ctx.redis, prefix, refs)) === refs.length ? now() : false),
      { timeoutMs: 20 * 60_000, intervalMs: users >= 5000 ? 500 : 200 },
    );
    const afterConvergence = await controller.stats();
    const fromSpawnMs = converged - controller.startedAt;
    const fromReadyMs = converged - controller.readyAt;
    const entries = await readdir(root);
    const state = JSON.parse(await readFile(statePath, 'utf8')) as Record<
      string,
      { path?: string; bhard?: number }
    >;
    const quotas = Object.values(state).filter((e) => e.path?.startsWith(root) && (e.bhard ?? 0) > 0).length;
    const quotaRuns = (await readFile(xfsLog, 'utf8')).split('\n').filter(Boolean).length;
    const standIn: number[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await runCommand(XFS_STAND_IN, ['-x', '-c', 'report -p -b -N -n', root], {
        env: { ...process.env, XFS_QUOTA_STATE: statePath },
      });
      standIn.push(run.ms);
    }
    standInRunMs = summarize(standIn).p50 ?? 0;
    const mb = (bytes: number): number => round(bytes / 2 ** 20, 1);
    say(
      `scale: ${users}: converged in ${round(fromSpawnMs)} ms from spawn (${quotas} quotas, ${quotaRuns} xfs_quota runs); ` +
        `rss ${mb(afterConvergence.rss)} MB, heap used ${mb(afterConvergence.heapUsed)} of ${mb(afterConvergence.heapTotal)} MB, external ${mb(afterConvergence.external)} MB`,
    );

    await controller.idle(1000, 5 * 60_000);
    // Bursts are told apart by what they did: a resync runs one quota `report`, and lists every
    // record (N HGETALL) only when the store changed or on every 20th resync ('resync+list');
    // anything else was set off by Docker events (other work on the shared engine).
    const probe = async (): Promise<Record<string, number>> => {
      const lines = (await readFile(xfsLog, 'utf8')).split('\n').filter(Boolean);
      return { xfsRuns: lines.length, xfsReports: lines.filter((l) => l.includes('report -p')).length };
    };
    // A resync's report runs in xfs_quota while the controller waits, often just before the
    // busy part: look a second back for it, or that resync passes for a relist set off by events.
    const classifyOptions = { extraLookBackMs: 1000 };
    const n = refs.length;
    const classify = (b: Omit<Burst, 'kind'>): string => {
      const hg = b.redisByCommand.hgetall ?? 0;
      if ((b.extra.xfsReports ?? 0) > 0) return hg >= 0.5 * n ? 'resync+list' : 'resync';
      return hg >= 0.5 * n ? 'rescan' : 'events';
    };
    const engineEvents = new EventWatcher(ctx.docker, () => true);
    await engineEvents.start();
    // At least one full round of the folder window (every folder looked at once), and three periods.
    const windowS = resyncS * Math.max(3, resyncsPerFullSweep(users, DEFAULT_FOLDERS_PER_RESYNC)) + 2;
    const windowStart = now();
    const window = analyse(
      await sampleWindow(controller, ctx.redis, windowS, { probe }),
      classify,
      classifyOptions,
    );
    const foreignEvents = engineEvents.since(windowStart).length;
    engineEvents.stop();
    let resyncBursts = window.bursts.filter((b) => b.kind === 'resync');
    if (resyncBursts.length === 0) resyncBursts = window.bursts.filter((b) => b.kind === 'resync+list');
    say(
      `scale: ${users}: bursts ${window.bursts.map((b) => `${b.kind} ${b.cpuMs}ms/${b.dockerCalls}calls`).join(', ')}`,
    );

    let fs: ScaleRow['fsSyscalls'];
    let fsNote: string | undefined;
    if (straceAvailable()) {
      // Under strace a resync runs several times slower: sample until one has run from start to
      // end inside the window (at most three periods, and at least three minutes).
      const { result: samples, trace } = await straceDuring(
        controller.pid,
        path.join(dir, 'strace.txt'),
        async () => {
          const all = await sampleWindow(controller, ctx.redis, resyncS + 2, { probe });
          const limit = now() + Math.max(resyncS * 3, 180) * 1000;
          while (
            !analyse(all, classify, classifyOptions).bursts.some((b) => b.kind === 'resync') &&
            now() < limit
          )
            all.push(...(await sampleWindow(controller, ctx.redis, 5, { probe })));
          return all;
        },
      );
      const traced = analyse(samples, classify, classifyOptions);
      const counted = traced.bursts
        .filter((b) => b.kind === 'resync')
        .map((b) => ({ burst: b, counts: trace.between(b.startWall - 150, b.endWall + 150) }));
      const byCall: Record<string, number> = {};
      for (const c of counted)
        for (const [k, v] of Object.entries(c.counts.fsByCall))
          byCall[k] = (byCall[k] ?? 0) + v / counted.length;
      fs = {
        perResync: summarize(
          counted.map((c) => c.counts.fsCalls),
          0,
        ),
        byCall: Object.fromEntries(Object.entries(byCall).map(([k, v]) => [k, Math.round(v)])),
        childProcessesPerResync: round(
          counted.reduce((a, c) => a + c.counts.childExecs, 0) / Math.max(1, counted.length),
          1,
        ),
        childSyscallsPerResync: Math.round(
          counted.reduce((a, c) => a + c.counts.childCalls, 0) / Math.max(1, counted.length),
        ),
        tracedBursts: traced.bursts.map((b) => ({
          kind: b.kind,
          ...trace.between(b.startWall - 150, b.endWall + 150),
        })),
      };
      if (counted.length === 0) fsNote = 'no resync fell inside the strace window';
      say(`scale: ${users}: fs syscalls per resync ${counted.map((c) => c.counts.fsCalls).join(' ')}`);
      await rm(path.join(dir, 'strace.txt'), { force: true });
    } else {
      fsNote = 'strace is not installed: filesystem syscalls not countable';
    }
    // The store is listed again whenever the notification subscription comes back after a drop.
    // The bench's Redis is private, so every pubsub client on it is this controller's.
    await ctx.redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const afterDrop = analyse(
      await sampleWindow(controller, ctx.redis, 6, { probe }),
      classify,
      classifyOptions,
    );
    const relist = afterDrop.bursts.find((b) => b.kind === 'rescan');
    say(`scale: ${users}: relist after a dropped subscription ${relist ? `${relist.cpuMs} ms` : 'not seen'}`);
    const status = await readFile(`/proc/${controller.pid}/status`, 'utf8');
    const peakRssMb = round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024, 1);
    const perResyncRedis: Record<string, number> = {};
    const nb = Math.max(1, resyncBursts.length);
    const other = window.bursts.filter((b) => !resyncBursts.includes(b));
    for (const b of resyncBursts)
      for (const [k, v] of Object.entries(b.redisByCommand))
        perResyncRedis[k] = (perResyncRedis[k] ?? 0) + v / nb;
    const { bursts: _b, firstSample: _f, lastSample: _l, ...windowRest } = window;
    const methods: Record<string, number> = {};
    for (const b of resyncBursts)
      for (const [k, v] of Object.entries(b.dockerByMethod))
        methods[k] = round((methods[k] ?? 0) + v / nb, 1);
    row = {
      users,
      manifestBytes,
      applyMs: round(applied.ms),
      reapplyMs: round(reapplied.ms),
      firstConvergence: {
        fromSpawnMs: round(fromSpawnMs),
        fromReadyMs: round(fromReadyMs),
        folders: entries.filter((e) => !e.endsWith('_email.txt') && !e.startsWith('.')).length,
        emailFiles: entries.filter((e) => e.endsWith('_email.txt')).length,
        quotas,
        quotaRuns,
        standInRunMs,
        cpuMs: round(cpuOf(afterConvergence)),
        dockerCalls: Object.values(afterConvergence.calls).reduce((a, b) => a + b, 0),
        rssMbAfter: round(afterConvergence.rss / 2 ** 20, 1),
      },
      steady: {
        resyncSeconds: resyncS,
        resyncs: resyncBursts.length,
        cpuMs: summarize(resyncBursts.map((b) => b.cpuMs)),
        dockerCalls: summarize(
          resyncBursts.map((b) => b.dockerCalls),
          0,
        ),
        dockerWrites: resyncBursts.reduce((a, b) => a + b.dockerWrites, 0),
        dockerByMethod: methods,
        redisCommands: summarize(
          resyncBursts.map((b) => b.redisCommands),
          0,
        ),
        redisByCommandPerResync: Object.fromEntries(
          Object.entries(perResyncRedis)
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => [k, Math.round(v)]),
        ),
        idleCpuMsPerS: window.idleCpuMsPerS,
        maxRssMb: window.maxRssMb,
        otherBursts: other.map((b) => ({
          kind: b.kind,
          startS: b.startS,
          cpuMs: b.cpuMs,
          dockerCalls: b.dockerCalls,
          redisCommands: b.redisCommands,
        })),
        foreignEngineEvents: foreignEvents,
        ...(relist && {
          relistOnResubscribe: { cpuMs: relist.cpuMs, redisCommands: relist.redisCommands },
        }),
        bursts: resyncBursts,
        window: windowRest,
      },
      ...(fs && { fsSyscalls: fs }),
      ...(fsNote && { fsSyscallsNote: fsNote }),
      peakRssMb,
      problems: summarizeProblems(controller),
    };
  } finally {
    await controller.stop();
  }

  let profiled: NonNullable<ScaleResult['profile']> | undefined;
  if (profileIt) profiled = await profileSteady(ctx, users, prefix, env, dir, resyncS);
  await ctx.dropPrefix(prefix);
  await rm(dir, { recursive: true, force: true });
  return { row, ...(profiled && { profiled }) };
}

function cpuOf(s: ControllerStats): number {
  return (s.cpuUserUs + s.cpuSystemUs) / 1000;
}

function summarizeProblems(controller: ControllerProcess): string[] {
  const counts = new Map<string, number>();
  for (const line of controller.problems()) {
    const key = `${line.msg}${typeof line.code === 'string' ? ` ${line.code}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].map(([k, n]) => `${n} × ${k}`);
}

/** A second controller on the converged store, under --cpu-prof, for two resyncs of steady state. */
async function profileSteady(
  ctx: RunContext,
  users: number,
  prefix: string,
  env: Record<string, string>,
  dir: string,
  resyncS: number,
): Promise<NonNullable<ScaleResult['profile']>> {
  const profDir = path.join(dir, 'profile');
  await mkdir(profDir, { recursive: true });
  const controller = new ControllerProcess({
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: resyncS,
    env,
    keepMinLevel: 40,
    logFile: ctx.logFile(`scale-${users}-profiled`),
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  });
  try {
    await controller.start();
    await sleep(2000);
    await controller.idle(1000, 5 * 60_000);
    // A fresh controller reconciles every User once at start: let its first resync settle them,
    // so the window holds only the steady state.
    await sleep((resyncS + 1) * 1000);
    const from = await controller.stats();
    await sleep((resyncS * 2 + 1) * 1000);
    const to = await controller.stats();
    await controller.stop();
    const file = await newestProfile(profDir);
    if (!file) throw new Error('no .cpuprofile written');
    const summary = await summarizeProfile(file, from.monoUs, to.monoUs);
    say(`scale: profile of ${users} users: ${summary.sampledMs} ms sampled in ${summary.windowMs} ms`);
    return { users, resyncs: 2, summary };
  } finally {
    await controller.stop();
  }
}
