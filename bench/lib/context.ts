/**
 * What one bench run shares: its id and label, a private Redis, the Docker client, a temp root,
 * the machine description, and the cleanup stack that removes everything the run created.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, cp, mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { Redis } from 'ioredis';
import { freePorts, now, say, sleep, waitFor } from './util.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where the controller and the CLI run from: a copy of the built dist/ (and bin/) taken when the
 * run starts, so a rebuild by someone else in the middle of a run changes nothing under it.
 * REPO_ROOT until the snapshot is taken.
 */
export let APP_ROOT = REPO_ROOT;

export interface AppSnapshot {
  readonly from: 'dist' | 'compiled-src' | 'compiled-head';
  readonly builtAt: string;
  readonly commit: string;
  readonly uncommittedSrcFiles: number;
}

/** A module graph that loads: every import of the CLI and the composition root resolves. */
function loads(root: string): string | undefined {
  const check = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `await import(${JSON.stringify(path.join(root, 'dist/main.js'))}); await import(${JSON.stringify(path.join(root, 'dist/cli/main.js'))});`,
    ],
    { encoding: 'utf8', cwd: root },
  );
  return check.status === 0 ? undefined : (check.stderr || 'failed').split('\n').slice(0, 6).join('\n');
}

export async function snapshotApp(tmp: string): Promise<AppSnapshot> {
  const root = path.join(tmp, 'app');
  await mkdir(root, { recursive: true });
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  await copyFile(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
  await cp(path.join(REPO_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
  const git = (args: string[]): string =>
    spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim();
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const uncommittedSrcFiles = git(['status', '--short', '--', 'src']).split('\n').filter(Boolean).length;
  let from: AppSnapshot['from'] = 'dist';
  let builtAt = '';
  try {
    builtAt = (await stat(path.join(REPO_ROOT, 'dist/main.js'))).mtime.toISOString();
    await cp(path.join(REPO_ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  } catch {
    // no dist: compiled below
  }
  const compile = async (cwd: string): Promise<string | undefined> => {
    await rm(path.join(root, 'dist'), { recursive: true, force: true });
    spawnSync(
      process.execPath,
      [
        path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        path.join(root, 'dist'),
      ],
      { cwd, encoding: 'utf8' },
    );
    builtAt = new Date().toISOString();
    // Type errors still emit JavaScript; what matters is that it loads.
    return loads(root) ?? undefined;
  };
  const problems: string[] = [];
  let problem = loads(root);
  if (problem) {
    problems.push(`dist/: ${problem}`);
    say(`dist/ does not load (${problem.split('\n')[0]}); compiling the working tree's src/`);
    from = 'compiled-src';
    problem = await compile(REPO_ROOT);
  }
  if (problem) {
    // Someone is in the middle of an edit: measure the last commit instead.
    problems.push(`working src/: ${problem}`);
    say(`the working tree's src/ does not load either; compiling src/ of ${commit}`);
    const head = path.join(tmp, 'head');
    await mkdir(head, { recursive: true });
    const archive = spawnSync(
      'sh',
      ['-c', `git archive HEAD src tsconfig.json tsconfig.build.json | tar -x -C '${head}'`],
      {
        cwd: REPO_ROOT,
      },
    );
    if (archive.status !== 0) throw new Error('git archive HEAD failed');
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(head, 'node_modules'));
    from = 'compiled-head';
    problem = await compile(head);
  }
  if (problem) throw new Error(`no build of the controller loads:\n${problems.join('\n')}\nHEAD: ${problem}`);
  APP_ROOT = root;
  return { from, builtAt, commit, uncommittedSrcFiles };
}
export const RUN_LABEL = 'test.swarmkeeper.run';
export const IMAGE = 'local/busybox:1';
export const XFS_STAND_IN = path.join(REPO_ROOT, 'test/fixtures/bin/xfs_quota');

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly engine: string;
  readonly engineApi: string;
  readonly dockerClient: string;
  readonly redis: string;
  /** Services and containers on the engine that are not this run's: other work shares the engine. */
  readonly otherServicesAtStart: number;
  readonly otherContainersAtStart: number;
}

export interface RunContextOptions {
  readonly smoke: boolean;
  /** Use this Redis instead of starting a private one. */
  readonly redisUrl?: string;
}

export class RunContext {
  readonly runId = `bench-${randomBytes(3).toString('hex')}`;
  readonly docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
  readonly smoke: boolean;
  redisUrl = '';
  redis!: Redis;
  tmp = '';
  machine!: Machine;
  app!: AppSnapshot;
  /** Every SWARMKEEPER_PREFIX this run used: cleanup drops them and removes objects they own. */
  readonly prefixes = new Set<string>();
  /** Every Docker name prefix this run used. */
  readonly namePrefixes = new Set<string>();
  private redisServer: ChildProcess | undefined;
  private readonly cleanups: { what: string; run: () => Promise<void>; phase: 'stop' | 'after' }[] = [];
  private readonly options: RunContextOptions;

  constructor(options: RunContextOptions) {
    this.options = options;
    this.smoke = options.smoke;
  }

  get labels(): Record<string, string> {
    return { [RUN_LABEL]: this.runId };
  }

  /** A short Docker name prefix (`bk` + 6 hex), distinct from any demo or test object. */
  newNamePrefix(): string {
    const prefix = `bk${randomBytes(3).toString('hex')}`;
    this.namePrefixes.add(prefix);
    return prefix;
  }

  /** A Redis key prefix for one controller deployment. */
  newPrefix(what: string): string {
    const prefix = `skbench:${this.runId}:${what}:${randomBytes(2).toString('hex')}`;
    this.prefixes.add(prefix);
    return prefix;
  }

  /** Controller logs of the last run, kept for reading (git-ignored *.log). */
  get logDir(): string {
    return path.join(REPO_ROOT, 'bench/results/logs');
  }

  logFile(name: string): string {
    return path.join(this.logDir, `${name}${this.smoke ? '.smoke' : ''}.log`);
  }

  async open(): Promise<void> {
    await mkdir(this.logDir, { recursive: true });
    this.tmp = await mkdtemp(path.join(tmpdir(), 'swarmkeeper-bench-'));
    this.onCleanup('temp dir', () => rm(this.tmp, { recursive: true, force: true }));
    await this.docker.ping();
    const info = (await this.docker.info()) as { Swarm?: { LocalNodeState?: string } };
    if (info.Swarm?.LocalNodeState !== 'active') {
      throw new Error(
        'the Docker engine is not in an active Swarm: run `npm run lab up` (scripts/lab.sh up)',
      );
    }
    try {
      await this.docker.getImage(IMAGE).inspect();
    } catch {
      throw new Error(`image ${IMAGE} is missing: run scripts/lab.sh up`);
    }
    this.app = await snapshotApp(this.tmp);
    this.watchEngine();
    await this.startRedis();
    this.machine = await this.describeMachine();
  }

  private async startRedis(): Promise<void> {
    if (this.options.redisUrl) {
      this.redisUrl = this.options.redisUrl;
    } else if (spawnSync('redis-server', ['--version']).status === 0) {
      // A private server: INFO commandstats then counts only this run's clients, and other
      // engineers' tests on the shared Redis neither disturb nor see the bench.
      const [port] = await freePorts(1);
      const dir = path.join(this.tmp, 'redis');
      await mkdir(dir, { recursive: true });
      const server = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: 'ignore' },
      );
      this.redisServer = server;
      this.redisUrl = `redis://127.0.0.1:${port}`;
      this.onCleanup('private redis-server', async () => {
        if (server.exitCode === null) {
          server.kill('SIGTERM');
          await new Promise((resolve) => server.once('exit', resolve));
        }
      });
    } else {
      this.redisUrl = 'redis://127.0.0.1:6379';
    }
    this.redis = new Redis(this.redisUrl, { maxRetriesPerRequest: 3, lazyConnect: true });
    this.redis.on('error', () => undefined); // connection errors surface as failed commands
    await waitFor(
      'redis',
      async () => {
        if (this.redis.status === 'wait') await this.redis.connect();
        return (await this.redis.ping()) === 'PONG';
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    this.onCleanup('redis prefixes', async () => {
      for (const prefix of this.prefixes) await this.dropPrefix(prefix);
      this.redis.disconnect();
    });
  }

  get privateRedis(): boolean {
    return this.redisServer !== undefined;
  }

  async dropPrefix(prefix: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.redis.del(...keys);
    } while (cursor !== '0');
  }

  private async describeMachine(): Promise<Machine> {
    const version = await this.docker.version();
    const services = await this.docker.listServices();
    const containers = await this.docker.listContainers({ all: true });
    const redisInfo = await this.redis.info('server');
    const cpu = cpus();
    const client = spawnSync('docker', ['version', '--format', '{{.Client.Version}}'], { encoding: 'utf8' });
    return {
      cores: cpu.length,
      cpuModel: cpu[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(),
      node: process.version,
      engine: version.Version,
      engineApi: version.ApiVersion,
      dockerClient: client.stdout.trim(),
      redis: /redis_version:(\S+)/.exec(redisInfo)?.[1] ?? 'unknown',
      otherServicesAtStart: services.length,
      otherContainersAtStart: containers.length,
    };
  }

  /**
   * Registers a cleanup. `stop` cleanups (controllers, peer loops, event streams) run first, so
   * nothing recreates what the Docker cleanup then removes; the others run after it.
   */
  /** When the engine did not answer /_ping (performance.now() ms): other people restart it. */
  readonly outages: { from: number; to: number }[] = [];
  private pinging: NodeJS.Timeout | undefined;

  /** Pings the engine every 250 ms and records the stretches when it does not answer. */
  private watchEngine(): void {
    let downSince: number | undefined;
    let busy = false;
    this.pinging = setInterval(() => {
      if (busy) return;
      busy = true;
      const started = now();
      const timeout = sleep(2_000).then(() => {
        throw new Error('ping timeout');
      });
      Promise.race([this.docker.ping(), timeout])
        .then(
          () => {
            if (downSince !== undefined) {
              this.outages.push({ from: downSince, to: now() });
              say(`the Docker engine answers again after ${Math.round(now() - downSince)} ms`);
              downSince = undefined;
            }
          },
          () => {
            if (downSince === undefined) {
              downSince = started;
              say('the Docker engine does not answer (restarted by someone?)');
            }
          },
        )
        .finally(() => {
          busy = false;
        });
    }, 250);
    this.onCleanup('engine watch', () => Promise.resolve(clearInterval(this.pinging)), 'stop');
  }

  /**
   * Whether the engine was away at any time in [from, to] (performance.now() ms), counting the
   * 10 s after it answers again, while the Swarm manager elects itself and tasks restart.
   */
  engineAwayDuring(from: number, to: number): boolean {
    return this.outages.some((o) => o.from <= to + 1000 && o.to + 10_000 >= from);
  }

  onCleanup(what: string, run: () => Promise<void>, phase: 'stop' | 'after' = 'after'): void {
    this.cleanups.push({ what, run, phase });
  }

  /** Stops what runs, removes the run's Docker objects, then the rest; a failing step is reported and the rest still run. */
  async close(): Promise<void> {
    const all = this.cleanups.reverse().splice(0);
    const run = async (list: typeof all): Promise<void> => {
      for (const cleanup of list) {
        try {
          await cleanup.run();
        } catch (error) {
          say(`cleanup of ${cleanup.what} failed: ${String(error)}`);
        }
      }
    };
    await run(all.filter((c) => c.phase === 'stop'));
    await removeRunObjects(this).catch((error: unknown) => say(`docker cleanup failed: ${String(error)}`));
    await run(all.filter((c) => c.phase === 'after'));
  }
}

const OWNER_LABEL = 'io.swarmkeeper.owner';
const MANAGED_LABEL = 'io.swarmkeeper.managed';

/**
 * Removes the Docker objects this run made: a name starting with one of the run's name prefixes,
 * and either the run label or the managed label of one of the run's prefixes (per-user volumes
 * made by the controller carry only the latter). Nothing else is touched.
 */
export async function removeRunObjects(ctx: RunContext, onlyNamePrefix?: string): Promise<void> {
  const docker = ctx.docker;
  const names = onlyNamePrefix ? [onlyNamePrefix] : [...ctx.namePrefixes];
  if (names.length === 0) return;
  const ours = (name: string | undefined, labels: Record<string, string> | null | undefined): boolean => {
    const bare = (name ?? '').replace(/^\//, '');
    if (!names.some((p) => bare.startsWith(p))) return false;
    if (labels?.[RUN_LABEL] === ctx.runId) return true;
    return labels?.[MANAGED_LABEL] === 'true' && ctx.prefixes.has(labels[OWNER_LABEL] ?? '');
  };
  const quiet = async (operation: Promise<unknown>): Promise<void> => {
    try {
      await operation;
    } catch (error) {
      const code = (error as { statusCode?: number }).statusCode;
      if (code !== 404) throw error;
    }
  };
  for (const service of await docker.listServices()) {
    if (ours(service.Spec?.Name, service.Spec?.Labels)) await quiet(docker.getService(service.ID).remove());
  }
  for (const container of await docker.listContainers({ all: true })) {
    if (container.Labels?.['com.docker.swarm.service.name']) continue;
    if (ours(container.Names[0], container.Labels))
      await quiet(docker.getContainer(container.Id).remove({ force: true }));
  }
  // Task containers and their endpoints leave a network a moment after their service.
  for (let attempt = 0; attempt < 100; attempt++) {
    const networks = (await docker.listNetworks()).filter((n) => ours(n.Name, n.Labels));
    let failed = 0;
    for (const network of networks) {
      try {
        await quiet(docker.getNetwork(network.Id).remove());
      } catch {
        failed++;
      }
    }
    if (failed === 0) break;
    await sleep(300);
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const { Volumes } = await docker.listVolumes();
    const volumes = (Volumes ?? []).filter((v) => ours(v.Name, v.Labels));
    let failed = 0;
    for (const volume of volumes) {
      try {
        await quiet(docker.getVolume(volume.Name).remove());
      } catch {
        failed++;
      }
    }
    if (failed === 0) break;
    await sleep(300);
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    let failed = 0;
    for (const config of await docker.listConfigs()) {
      if (!ours(config.Spec?.Name, config.Spec?.Labels)) continue;
      try {
        await quiet(docker.getConfig(config.ID).remove());
      } catch {
        failed++;
      }
    }
    for (const secret of await docker.listSecrets()) {
      if (!ours(secret.Spec?.Name, secret.Spec?.Labels)) continue;
      try {
        await quiet(docker.getSecret(secret.ID).remove());
      } catch {
        failed++;
      }
    }
    if (failed === 0) break;
    await sleep(300);
  }
}
