/**
 * A controller in-process against the real lab, with its own Redis prefix, its own Docker name
 * prefix and captured log lines, torn down with everything it created.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Redis } from 'ioredis';
import type { FaultInjector } from '../../src/actuate/index.js';
import { loadConfig } from '../../src/config.js';
import { openDesiredStore } from '../../src/desired/open.js';
import type { RedisDesiredStore } from '../../src/desired/redis-store.js';
import { createLogger } from '../../src/log.js';
import { assembleController, type ControllerApp } from '../../src/main.js';
import { validateResource, type Resource } from '../../src/resources/resource.js';
import { removeTestObjects } from './docker-cleanup.js';
import { dropPrefix, rawRedis, REDIS_URL, TEST_RUN_LABEL, testRunId, uniquePrefix } from './lab.js';

export type LogLine = Record<string, unknown> & { msg: string };

export class ControllerLab {
  readonly prefix: string;
  /** Every Docker object name in the test starts with this. */
  readonly names: string;
  readonly redis: Redis;
  readonly logs: LogLine[] = [];
  store!: RedisDesiredStore;
  /** Where the last controller started with `serveHttp` listens. */
  address: { host: string; port: number } | undefined;
  private apps: ControllerApp[] = [];

  /** `docker` is where close() removes what the test made: the lab engine unless given another. */
  constructor(
    testName: string,
    private readonly docker?: Dockerode,
  ) {
    this.prefix = uniquePrefix(testName);
    this.names = `sk${randomBytes(3).toString('hex')}`;
    this.redis = rawRedis();
  }

  async open(): Promise<void> {
    this.store = await openDesiredStore(this.config(), 'cli');
  }

  config(resyncSeconds = 1, env: Record<string, string> = {}): ReturnType<typeof loadConfig> {
    return loadConfig({
      REDIS_URL,
      SWARMKEEPER_PREFIX: this.prefix,
      SWARMKEEPER_RESYNC_SECONDS: String(resyncSeconds),
      SWARMKEEPER_LOG_LEVEL: 'debug',
      ...env,
    });
  }

  /** `<names>-<suffix>`: a Docker object name unique to this test. */
  name(suffix: string): string {
    return `${this.names}-${suffix}`;
  }

  /** A validated resource carrying the test-run label, so cleanup can find what the controller made of it. */
  resource(kind: string, name: string, spec: unknown, annotations?: Record<string, string>): Resource {
    const result = validateResource({
      apiVersion: 'swarmkeeper/v1',
      kind,
      metadata: { name, labels: { [TEST_RUN_LABEL]: testRunId() }, ...(annotations && { annotations }) },
      spec,
    });
    if (!result.ok) throw new Error(`bad test resource: ${JSON.stringify(result.issues)}`);
    return result.resource;
  }

  async apply(...resources: Resource[]): Promise<void> {
    await this.store.apply(resources);
  }

  /** Starts a controller; several may run one after another (a restart) in one test. */
  async start(
    options: {
      faultInjector?: FaultInjector;
      resyncSeconds?: number;
      env?: Record<string, string>;
      leaderElection?: boolean;
      /** Serve HTTP on 127.0.0.1 (an ephemeral port); `address` then says where. */
      serveHttp?: boolean;
    } = {},
  ): Promise<ControllerApp> {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim()) this.logs.push(JSON.parse(line) as LogLine);
        }
        done();
      },
    });
    const env = { SWARMKEEPER_HTTP_ADDR: '127.0.0.1:0', ...options.env };
    const app = await assembleController(this.config(options.resyncSeconds ?? 1, env), {
      log: createLogger('debug', sink),
      mode: 'controller',
      leaderElection: options.leaderElection ?? false,
      ...(options.faultInjector && { faultInjector: options.faultInjector }),
    });
    this.apps.push(app);
    this.address = await app.start({ serveHttp: options.serveHttp ?? false });
    return app;
  }

  async stopAll(): Promise<void> {
    for (const app of this.apps.splice(0)) await app.close();
  }

  logsWith(msg: string, fields: Record<string, unknown> = {}): LogLine[] {
    return this.logs.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  }

  async close(): Promise<void> {
    await this.stopAll();
    // Kept for reading after a failure; test-artifacts/ is git-ignored.
    await mkdir('test-artifacts/controller-logs', { recursive: true });
    await writeFile(
      `test-artifacts/controller-logs/${this.names}.jsonl`,
      this.logs.map((l) => JSON.stringify(l)).join('\n'),
    );
    await this.store.close();
    await removeTestObjects(this.names, this.docker);
    await dropPrefix(this.redis, this.prefix);
    this.redis.disconnect();
  }
}
