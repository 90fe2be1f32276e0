/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time of one window went: self and
 * inclusive time per function, samples restricted to the window by the profile's own clock
 * (monotonic µs, the clock the controller reports as monoUs).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { APP_ROOT, REPO_ROOT } from './context.js';
import { round } from './util.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  readonly fn: string;
  readonly where: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

export interface ProfileSummary {
  readonly windowMs: number;
  readonly sampledMs: number;
  readonly topSelf: readonly ProfileEntry[];
  /** Inclusive time of the controller's own functions (dist/), the ones to read first. */
  readonly topInclusiveOwn: readonly ProfileEntry[];
}

export async function newestProfile(dir: string): Promise<string | undefined> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  const last = files[files.length - 1];
  return last ? path.join(dir, last) : undefined;
}

function location(frame: ProfileNode['callFrame']): string {
  if (!frame.url) return '(native)';
  const file = frame.url.replace(/^file:\/\//, '');
  const base = file.startsWith(APP_ROOT) ? APP_ROOT : file.startsWith(REPO_ROOT) ? REPO_ROOT : undefined;
  const relative = base ? path.relative(base, file) : file;
  return `${relative}:${frame.lineNumber + 1}`;
}

export async function summarizeProfile(
  file: string,
  fromUs: number,
  toUs: number,
  top = 25,
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const names = new Map<string, { fn: string; where: string }>();
  let t = profile.startTime;
  let sampled = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < fromUs || t > toUs) continue;
    const next = profile.timeDeltas[i + 1] ?? delta;
    const weight = next / 1000;
    const id = profile.samples[i]!;
    const node = byId.get(id);
    if (!node) continue;
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') {
      if (name !== '(idle)') {
        const key = name;
        names.set(key, { fn: name, where: '' });
        self.set(key, (self.get(key) ?? 0) + weight);
        total.set(key, (total.get(key) ?? 0) + weight);
        sampled += weight;
      }
      continue;
    }
    sampled += weight;
    const key = `${name}@${location(node.callFrame)}`;
    names.set(key, { fn: name, where: location(node.callFrame) });
    self.set(key, (self.get(key) ?? 0) + weight);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const k = `${n.callFrame.functionName || '(anonymous)'}@${location(n.callFrame)}`;
      if (seen.has(k)) continue;
      seen.add(k);
      names.set(k, { fn: n.callFrame.functionName || '(anonymous)', where: location(n.callFrame) });
      total.set(k, (total.get(k) ?? 0) + weight);
    }
  }
  const entry = (key: string): ProfileEntry => ({
    fn: names.get(key)?.fn ?? key,
    where: names.get(key)?.where ?? '',
    selfMs: round(self.get(key) ?? 0, 1),
    totalMs: round(total.get(key) ?? 0, 1),
  });
  const topSelf = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k]) => entry(k));
  const topInclusiveOwn = [...total.entries()]
    .filter(([k]) => (names.get(k)?.where ?? '').startsWith('dist/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k]) => entry(k));
  return {
    windowMs: round((toUs - fromUs) / 1000, 0),
    sampledMs: round(sampled, 1),
    topSelf,
    topInclusiveOwn,
  };
}
