/**
 * The controller under test, in its own process so its CPU time and RSS are its own.
 *
 * The child runs the same composition root as `swarmkeeper run` (the same V8 heap setting, then
 * assembleController from the built dist/main.js, then start), with leader election off (one replica) and the HTTP server
 * off (no port to clash with). Unlike bin/swarmkeeper.js it answers `stats` requests on an IPC
 * channel with the app's own DockerCallCounter, process.cpuUsage() and process.memoryUsage(),
 * so the bench reads the counter the app keeps rather than guessing from logs. Its JSON log
 * lines are parsed as they arrive and kept for the benchmark to read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { APP_ROOT } from './context.js';
import { now, say, sleep, waitFor } from './util.js';

/** Plain JavaScript so the child needs no TypeScript loader: its memory is the controller's. */
const CHILD_SCRIPT = `
import { pathToFileURL } from 'node:url';
const base = pathToFileURL(process.cwd() + '/');
const { loadConfig } = await import(new URL('dist/config.js', base).href);
const { createLogger } = await import(new URL('dist/log.js', base).href);
const { assembleController, tuneHeapForLongRun } = await import(new URL('dist/main.js', base).href);
// As \`swarmkeeper run\` does, before anything is allocated.
tuneHeapForLongRun();
const config = loadConfig(process.env);
const log = createLogger(config.SWARMKEEPER_LOG_LEVEL);
const app = await assembleController(config, { log, mode: 'controller', leaderElection: false });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try { await app.close(); } finally { setTimeout(() => process.exit(0), 200).unref(); }
};
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
process.on('message', (message) => {
  if (message && message.type === 'stats') {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    process.send({
      type: 'stats',
      id: message.id,
      calls: app.counter.byMethod(),
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
      queueDepth: app.controller.queueDepth,
      at: Date.now(),
      monoUs: Number(process.hrtime.bigint() / 1000n),
    });
  }
});
await app.start({ serveHttp: false });
process.send({ type: 'ready' });
`;

export interface ControllerStats {
  readonly calls: Readonly<Record<string, number>>;
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  readonly rss: number;
  readonly heapUsed: number;
  /** V8's heap as allocated (what RSS holds of it), and memory outside it (Buffers, strings handed to native code). */
  readonly heapTotal: number;
  readonly external: number;
  readonly queueDepth: number;
  /** The child's monotonic clock in µs (the clock of a --cpu-prof profile). */
  readonly monoUs: number;
  /** performance.now() in the bench when the answer arrived. */
  readonly receivedAt: number;
}

export type LogLine = Record<string, unknown> & { msg: string; level: number; receivedAt: number };

/** dockerode methods that change something; everything else the counter sees is a read. */
export const WRITE_METHODS =
  /^(create|update|remove|start|stop|kill|restart|connect|disconnect|rename|prune|pause|unpause)/i;

export function totalCalls(calls: Readonly<Record<string, number>>, filter?: RegExp): number {
  let sum = 0;
  for (const [method, n] of Object.entries(calls)) if (!filter || filter.test(method)) sum += n;
  return sum;
}

export function diffCalls(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [method, n] of Object.entries(after)) {
    const d = n - (before[method] ?? 0);
    if (d !== 0) out[method] = d;
  }
  return out;
}

export interface ControllerOptions {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly resyncSeconds?: number;
  /** Default: BENCH_LOG_LEVEL from the environment, else info. */
  readonly logLevel?: string;
  readonly env?: Record<string, string>;
  /** Where raw log lines go (a file); they are parsed and kept in memory as well (see keepMinLevel). */
  readonly logFile?: string;
  /** Keep parsed lines at this pino level or above (default 0: all); 40 keeps warnings and errors. */
  readonly keepMinLevel?: number;
  /** Extra node flags for the child, e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[];
}

export class ControllerProcess {
  /** Every controller started and not yet stopped, so an interrupted run can stop them first. */
  private static readonly live = new Set<ControllerProcess>();

  static async stopAll(): Promise<void> {
    for (const controller of [...ControllerProcess.live]) await controller.stop();
  }

  readonly logs: LogLine[] = [];
  private child: ChildProcess | undefined;
  private ready = false;
  private nextId = 1;
  private readonly waiting = new Map<number, (stats: ControllerStats) => void>();
  private logListeners: ((line: LogLine) => void)[] = [];
  private file: WriteStream | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  startedAt = 0;
  readyAt = 0;
  logCount = 0;

  constructor(private readonly options: ControllerOptions) {}

  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error('controller not started');
    return pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static checkBuilt(): void {
    if (!existsSync(path.join(APP_ROOT, 'dist/main.js'))) {
      throw new Error('dist/ is missing: run `npm run build` before the bench');
    }
  }

  /** Spawns the child and resolves once its first full sync is queued (`app.start` returned). */
  async start(): Promise<void> {
    ControllerProcess.checkBuilt();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      REDIS_URL: this.options.redisUrl,
      SWARMKEEPER_PREFIX: this.options.prefix,
      SWARMKEEPER_RESYNC_SECONDS: String(this.options.resyncSeconds ?? 30),
      SWARMKEEPER_LOG_LEVEL: this.options.logLevel ?? process.env['BENCH_LOG_LEVEL'] ?? 'info',
      SWARMKEEPER_LEADER_ELECTION: 'false',
      ...this.options.env,
    };
    if (this.options.logFile) this.file = createWriteStream(this.options.logFile, { flags: 'a' });
    this.startedAt = now();
    const child = spawn(
      process.execPath,
      [...benchNodeFlags(), ...(this.options.nodeFlags ?? []), '--input-type=module', '-e', CHILD_SCRIPT],
      { cwd: APP_ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    this.child = child;
    ControllerProcess.live.add(this);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const keepMinLevel = this.options.keepMinLevel ?? 0;
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const receivedAt = now();
      this.file?.write(`${text}\n`);
      this.logCount++;
      let line: LogLine;
      try {
        line = { ...(JSON.parse(text) as Record<string, unknown>), receivedAt } as LogLine;
      } catch {
        return;
      }
      if (line.level >= keepMinLevel) this.logs.push(line);
      for (const listener of this.logListeners) listener(line);
    });
    const stderr: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (text) => {
      stderr.push(text);
      this.file?.write(`[stderr] ${text}\n`);
    });
    child.on('message', (message: unknown) => {
      const m = message as { type?: string; id?: number } & Omit<ControllerStats, 'receivedAt'>;
      if (m.type === 'ready') {
        this.ready = true;
        this.readyAt = now();
      } else if (m.type === 'stats' && m.id !== undefined) {
        const resolve = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        resolve?.({ ...m, receivedAt: now() });
      }
    });
    try {
      await waitFor(
        'the controller to start',
        () => this.ready || (child.exitCode !== null ? 'dead' : false),
        {
          timeoutMs: 120_000,
          intervalMs: 20,
        },
      );
    } catch (error) {
      throw new Error(`${String(error)}; stderr: ${stderr.slice(-20).join('\n')}`);
    }
    if (!this.ready) throw new Error(`controller exited at start: ${stderr.slice(-20).join('\n')}`);
  }

  /** The app's counter, CPU time and memory, read inside the controller process. */
  stats(timeoutMs = 10_000): Promise<ControllerStats> {
    const child = this.child;
    if (!child?.connected) return Promise.reject(new Error('controller not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('controller stats timed out'));
      }, timeoutMs);
      this.waiting.set(id, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      child.send({ type: 'stats', id });
    });
  }

  onLog(listener: (line: LogLine) => void): () => void {
    this.logListeners.push(listener);
    return () => {
      this.logListeners = this.logListeners.filter((l) => l !== listener);
    };
  }

  logsWith(msg: string, fields: Record<string, unknown> = {}, since = 0): LogLine[] {
    return this.logs.filter(
      (l) => l.receivedAt >= since && l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v),
    );
  }

  /** Log lines at warn (40) or above since `since`. */
  problems(since = 0): LogLine[] {
    return this.logs.filter((l) => l.receivedAt >= since && l.level >= 40);
  }

  /** Waits until the work queue is empty and stays empty for `quietMs`. */
  async idle(quietMs = 500, timeoutMs = 120_000): Promise<void> {
    let quietSince = 0;
    await waitFor(
      'the controller work queue to drain',
      async () => {
        const stats = await this.stats();
        if (stats.queueDepth > 0) {
          quietSince = 0;
          return false;
        }
        if (quietSince === 0) quietSince = now();
        return now() - quietSince >= quietMs;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  /** SIGSTOP: the process keeps its sockets but runs nothing, so a multi-step drift lands whole. */
  freeze(): void {
    process.kill(this.pid, 'SIGSTOP');
  }

  thaw(): void {
    process.kill(this.pid, 'SIGCONT');
  }

  /** `kill -9`, as a crash or an OOM kill would: nothing drains, whatever was half done stays so. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await this.exited;
    }
    await this.stop();
  }

  /** SIGTERM and wait (the app drains in at most 20 s); SIGKILL after 30 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid!, 'SIGCONT');
      } catch {
        // already gone
      }
      child.kill('SIGTERM');
      const timeout = sleep(30_000).then(() => 'timeout' as const);
      if ((await Promise.race([this.exited, timeout])) === 'timeout') {
        say('controller did not stop within 30 s; killing it');
        child.kill('SIGKILL');
        await this.exited;
      }
    }
    this.child = undefined;
    ControllerProcess.live.delete(this);
    await new Promise<void>((resolve) => (this.file ? this.file.end(resolve) : resolve()));
    this.file = undefined;
  }
}

/** BENCH_NODE_FLAGS: extra node/V8 flags for every controller a bench starts (e.g. to try a GC setting). */
function benchNodeFlags(): string[] {
  return (process.env['BENCH_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean);
}
