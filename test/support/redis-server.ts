/**
 * A private redis-server for fault and security tests: its own free port on 127.0.0.1 and its own
 * folder, so a test can stop it, start it again on the same port and folder, give it a password or
 * TLS, without touching the lab's shared Redis. Persistence (append-only file, fsync always) is on
 * by default, so what was written before a stop is there after the restart, even after SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PrivateRedisOptions {
  /** `--requirepass`: clients must AUTH with it. */
  readonly password?: string;
  /** Keep data across stop/start (appendonly, fsync always). Default true. */
  readonly persist?: boolean;
  /** Serve TLS only (`--port 0 --tls-port <port>`), with these PEM files. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
  /** More redis-server options, e.g. `['--replicaof', '127.0.0.1', '1']` for a replica whose master is away. */
  readonly extraArgs?: readonly string[];
}

/** A TCP port nobody listens on right now (the kernel's pick). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  if (port === 0) throw new Error('no free port');
  return port;
}

export class PrivateRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: PrivateRedisOptions,
  ) {}

  /** Starts a redis-server on a free port in a new temporary folder; resolves once it accepts connections. */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const dir = await mkdtemp(path.join(tmpdir(), 'sk-redis-'));
    const redis = new PrivateRedis(await freePort(), dir, options);
    await redis.restart();
    return redis;
  }

  /** `redis://127.0.0.1:<port>` or `rediss://localhost:<port>` (the certificate names localhost). */
  get url(): string {
    return this.options.tls ? `rediss://localhost:${this.port}` : `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    const child = this.child;
    // A process killed by a signal keeps exitCode null: look at both.
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Starts the server again on the same port and folder (its data comes back when `persist`). */
  async restart(): Promise<void> {
    if (this.running) return;
    const persist = this.options.persist ?? true;
    const args = [
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--logfile',
      path.join(this.dir, 'redis.log'),
      '--daemonize',
      'no',
      '--save',
      '',
      '--appendonly',
      persist ? 'yes' : 'no',
      '--appendfsync',
      'always',
      ...(this.options.password === undefined ? [] : ['--requirepass', this.options.password]),
      ...(this.options.tls
        ? [
            '--port',
            '0',
            '--tls-port',
            String(this.port),
            '--tls-cert-file',
            this.options.tls.cert,
            '--tls-key-file',
            this.options.tls.key,
            '--tls-ca-cert-file',
            this.options.tls.ca,
            '--tls-auth-clients',
            'no',
          ]
        : ['--port', String(this.port)]),
      ...(this.options.extraArgs ?? []),
    ];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await this.waitForLog(/Ready to accept connections/, child);
  }

  /**
   * Stops the server: `kill` (SIGKILL, the default: an abrupt outage) or `term` (SIGTERM, a clean
   * shutdown). Resolves once the process has exited and the port is free.
   */
  async stop(how: 'kill' | 'term' = 'kill'): Promise<void> {
    const child = this.child;
    if (!child || this.pid === undefined) return;
    child.kill(how === 'kill' ? 'SIGKILL' : 'SIGTERM');
    await this.exited;
  }

  /** Stops the server and removes its folder. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  async log(): Promise<string> {
    return readFile(path.join(this.dir, 'redis.log'), 'utf8').catch(() => '');
  }

  private async waitForLog(pattern: RegExp, child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 10_000;
    // The log is appended across restarts: only lines written by this process count.
    const marker = `${child.pid}:`;
    for (;;) {
      const lines = (await this.log()).split('\n').filter((l) => l.startsWith(marker));
      if (lines.some((l) => pattern.test(l))) return;
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        throw new Error(`redis-server on port ${this.port} did not start:\n${lines.slice(-10).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
