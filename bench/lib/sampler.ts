/**
 * Steady-state cost per resync: samples the controller (CPU time, the app's Docker call counter,
 * RSS) and Redis (INFO commandstats of the private server) every 100 ms, then cuts the timeline
 * into bursts of work. Between resyncs an idle controller uses next to no CPU, so each burst is
 * one resync (or a resync and the store's listing, which runs every 20th period).
 */
import type { Redis } from 'ioredis';
import {
  diffCalls,
  totalCalls,
  WRITE_METHODS,
  type ControllerProcess,
  type ControllerStats,
} from './controller.js';
import { now, round, sleep } from './util.js';

export interface Sample {
  readonly at: number;
  /** Date.now() of the sample, to line up with strace's clock. */
  readonly wall: number;
  /** Extra counters read by the caller's probe (e.g. xfs_quota runs so far). */
  readonly extra: Readonly<Record<string, number>>;
  readonly stats: ControllerStats;
  readonly redis: Readonly<Record<string, number>>;
}

export interface Burst {
  readonly startS: number;
  readonly startWall: number;
  readonly endWall: number;
  /** What the burst was, from the caller's classifier (e.g. resync, rescan, events). */
  readonly kind: string;
  readonly extra: Readonly<Record<string, number>>;
  readonly durationMs: number;
  readonly cpuMs: number;
  readonly dockerCalls: number;
  readonly dockerByMethod: Readonly<Record<string, number>>;
  readonly dockerWrites: number;
  readonly redisCommands: number;
  readonly redisByCommand: Readonly<Record<string, number>>;
  readonly maxRssMb: number;
}

export interface Window {
  readonly seconds: number;
  readonly samples: number;
  readonly bursts: readonly Burst[];
  readonly totalCpuMs: number;
  /** CPU outside bursts, per second (timers, keepalives). */
  readonly idleCpuMsPerS: number;
  readonly totalDockerCalls: number;
  readonly totalDockerByMethod: Readonly<Record<string, number>>;
  readonly totalRedisCommands: number;
  readonly totalRedisByCommand: Readonly<Record<string, number>>;
  readonly maxRssMb: number;
  readonly firstSample: ControllerStats;
  readonly lastSample: ControllerStats;
}

/** Commands the bench itself sends during a window, left out of the controller's counts. */
const BENCH_COMMANDS = new Set(['info']);

export async function redisCommandStats(redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats');
  const out: Record<string, number> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const [, name, calls] = match;
    if (name && !BENCH_COMMANDS.has(name)) out[name] = Number(calls);
  }
  return out;
}

function cpuMs(s: ControllerStats): number {
  return (s.cpuUserUs + s.cpuSystemUs) / 1000;
}

/** Samples for `seconds`, every `intervalMs`. */
export async function sampleWindow(
  controller: ControllerProcess,
  redis: Redis,
  seconds: number,
  options: { intervalMs?: number; probe?: () => Promise<Record<string, number>> } = {},
): Promise<Sample[]> {
  const intervalMs = options.intervalMs ?? 100;
  const samples: Sample[] = [];
  const end = now() + seconds * 1000;
  let next = now();
  while (now() < end) {
    const [stats, counts, extra] = await Promise.all([
      controller.stats(),
      redisCommandStats(redis),
      options.probe ? options.probe() : Promise.resolve({}),
    ]);
    samples.push({ at: now(), wall: Date.now(), stats, redis: counts, extra });
    next += intervalMs;
    const wait = next - now();
    if (wait > 0) await sleep(wait);
  }
  return samples;
}

/**
 * Bursts: runs of samples using more than `busyMsPer100` ms CPU per 100 ms, merged across short
 * gaps. A burst's `extra` counters (the caller's probe) start up to `extraLookBackMs` before it,
 * never before the previous burst's end: work that waits on another process (a resync's quota
 * report, run by xfs_quota while the controller idles) leaves its mark just before the busy part.
 */
export function analyse(
  samples: readonly Sample[],
  classify: (burst: Omit<Burst, 'kind'>) => string = () => 'work',
  { busyMsPer100 = 4, mergeGapMs = 700, extraLookBackMs = 0 } = {},
): Window {
  if (samples.length < 2) throw new Error('a window needs at least two samples');
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const ranges: [number, number][] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const rate = ((cpuMs(b.stats) - cpuMs(a.stats)) / Math.max(1, b.at - a.at)) * 100;
    if (rate <= busyMsPer100) continue;
    const previous = ranges[ranges.length - 1];
    if (previous && a.at - samples[previous[1]]!.at <= mergeGapMs) previous[1] = i;
    else ranges.push([i - 1, i]);
  }
  const sumRedis = (
    a: Readonly<Record<string, number>>,
    b: Readonly<Record<string, number>>,
  ): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(b)) {
      const d = v - (a[k] ?? 0);
      if (d > 0) out[k] = d;
    }
    return out;
  };
  // A burst cut by either end of the window is only partly measured: leave it out.
  const complete = ranges.filter(([i, j]) => i > 0 && j < samples.length - 2);
  const bursts: Burst[] = complete.map(([i, j], n) => {
    const a = samples[i]!;
    const b = samples[j]!;
    let from = i;
    const floor = n > 0 ? complete[n - 1]![1] : 0;
    while (from > floor && a.at - samples[from - 1]!.at <= extraLookBackMs) from--;
    const docker = diffCalls(a.stats.calls, b.stats.calls);
    const redis = sumRedis(a.redis, b.redis);
    let maxRss = 0;
    for (let k = i; k <= j; k++) maxRss = Math.max(maxRss, samples[k]!.stats.rss);
    const burst = {
      startS: round((a.at - first.at) / 1000, 1),
      startWall: a.wall,
      endWall: b.wall,
      extra: sumRedis(samples[from]!.extra, b.extra),
      durationMs: round(b.at - a.at, 0),
      cpuMs: round(cpuMs(b.stats) - cpuMs(a.stats), 1),
      dockerCalls: totalCalls(docker),
      dockerByMethod: docker,
      dockerWrites: totalCalls(docker, WRITE_METHODS),
      redisCommands: Object.values(redis).reduce((x, y) => x + y, 0),
      redisByCommand: redis,
      maxRssMb: round(maxRss / 2 ** 20, 1),
    };
    return { ...burst, kind: classify(burst) };
  });
  const totalCpu = cpuMs(last.stats) - cpuMs(first.stats);
  const burstCpu = bursts.reduce((x, b) => x + b.cpuMs, 0);
  const seconds = (last.at - first.at) / 1000;
  const docker = diffCalls(first.stats.calls, last.stats.calls);
  const redis = sumRedis(first.redis, last.redis);
  return {
    seconds: round(seconds, 1),
    samples: samples.length,
    bursts,
    totalCpuMs: round(totalCpu, 1),
    idleCpuMsPerS: round((totalCpu - burstCpu) / Math.max(0.001, seconds), 2),
    totalDockerCalls: totalCalls(docker),
    totalDockerByMethod: docker,
    totalRedisCommands: Object.values(redis).reduce((x, y) => x + y, 0),
    totalRedisByCommand: redis,
    maxRssMb: round(Math.max(...samples.map((s) => s.stats.rss)) / 2 ** 20, 1),
    firstSample: first.stats,
    lastSample: last.stats,
  };
}
