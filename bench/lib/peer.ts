/**
 * The peer: bench/peer/docker-compose.yml deployed with `docker stack deploy`, re-run every 30 s
 * like the usual cron self-heal.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand, type CommandResult } from './cli.js';
import { REPO_ROOT, type RunContext } from './context.js';
import { EXAMPLE_DIR } from './deployment.js';
import { now, say, sleep, waitFor } from './util.js';

export const PEER_COMPOSE = path.join(REPO_ROOT, 'bench/peer/docker-compose.yml');
export const PEER_DRIFTS = path.join(REPO_ROOT, 'bench/peer/docker-compose.drifts.yml');
export const PEER_PERIOD_MS = 30_000;

export interface PeerDeploy {
  readonly at: number;
  readonly ms: number;
  readonly code: number | null;
  readonly error?: string;
}

export class PeerStack {
  readonly stack: string;
  readonly dir: string;
  readonly deploys: PeerDeploy[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<CommandResult> | undefined;

  constructor(
    private readonly ctx: RunContext,
    np: string,
    dir: string,
    private readonly ports: readonly number[],
    private readonly withDrifts: boolean,
  ) {
    this.stack = `${np}pk`;
    this.dir = dir;
  }

  name(service: string): string {
    return `${this.stack}_${service}`;
  }

  get files(): string[] {
    return this.withDrifts ? [PEER_COMPOSE, PEER_DRIFTS] : [PEER_COMPOSE];
  }

  /** The command the cron job runs, for the report. */
  get commandLine(): string {
    return `docker stack deploy --resolve-image never ${this.files.map((f) => `-c ${path.relative(REPO_ROOT, f)}`).join(' ')} <stack>`;
  }

  async prepare(): Promise<void> {
    await mkdir(path.join(this.dir, 'nfs'), { recursive: true });
    await mkdir(path.join(this.dir, 'etc-jupyterhub'), { recursive: true });
    await copyFile(path.join(EXAMPLE_DIR, 'proxy.conf'), path.join(this.dir, 'proxy.conf'));
    await copyFile(
      path.join(EXAMPLE_DIR, 'jupyterhub_config.py'),
      path.join(this.dir, 'jupyterhub_config.py'),
    );
    await writeFile(path.join(this.dir, 'oauth-client-secret'), 'demo-only-not-a-secret');
    this.ctx.onCleanup(`peer loop ${this.stack}`, () => Promise.resolve(this.stopLoop()), 'stop');
    this.ctx.onCleanup(`peer stack ${this.stack}`, () => this.remove());
  }

  async writeConfig(content: string): Promise<void> {
    await writeFile(path.join(this.dir, 'proxy.conf'), content);
  }

  async restoreConfig(): Promise<void> {
    await copyFile(path.join(EXAMPLE_DIR, 'proxy.conf'), path.join(this.dir, 'proxy.conf'));
  }

  /** One `docker stack deploy`. */
  async deploy(): Promise<CommandResult> {
    if (this.inFlight) return this.inFlight;
    const at = now();
    const run = runCommand(
      'docker',
      ['stack', 'deploy', '--resolve-image', 'never', ...this.files.flatMap((f) => ['-c', f]), this.stack],
      {
        env: {
          ...process.env,
          PEER_DIR: this.dir,
          PEER_PORT_HUB: String(this.ports[0]),
          PEER_PORT_NGINX: String(this.ports[1]),
          PEER_RUN_LABEL: this.ctx.runId,
        },
      },
    );
    this.inFlight = run;
    try {
      const result = await run;
      const error = result.code === 0 ? undefined : result.stderr.trim().split('\n').slice(-1)[0];
      this.deploys.push({ at, ms: result.ms, code: result.code, ...(error && { error }) });
      return result;
    } finally {
      this.inFlight = undefined;
    }
  }

  /** The cron loop: a deploy now, then one every 30 s whatever the last one did. */
  startLoop(): void {
    this.stopLoop();
    void this.deploy();
    this.timer = setInterval(() => void this.deploy(), PEER_PERIOD_MS);
  }

  stopLoop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async remove(): Promise<void> {
    this.stopLoop();
    await this.inFlight?.catch(() => undefined);
    await runCommand('docker', ['stack', 'rm', this.stack]);
    // Wait for the task containers to go so the networks and volume can be removed.
    await waitFor(
      `stack ${this.stack} to go`,
      async () => {
        const containers = await this.ctx.docker.listContainers({
          all: true,
          filters: JSON.stringify({ label: [`com.docker.stack.namespace=${this.stack}`] }),
        });
        return containers.length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    ).catch((error: unknown) => say(String(error)));
    for (let attempt = 0; attempt < 30; attempt++) {
      const networks = (await this.ctx.docker.listNetworks()).filter((n) =>
        n.Name.startsWith(`${this.stack}_`),
      );
      const { Volumes } = await this.ctx.docker.listVolumes();
      const volumes = (Volumes ?? []).filter(
        (v) => v.Name.startsWith(`${this.stack}_`) && v.Labels?.['com.docker.stack.namespace'] === this.stack,
      );
      if (networks.length === 0 && volumes.length === 0) return;
      for (const n of networks)
        await this.ctx.docker
          .getNetwork(n.Id)
          .remove()
          .catch(() => undefined);
      for (const v of volumes)
        await this.ctx.docker
          .getVolume(v.Name)
          .remove()
          .catch(() => undefined);
      await sleep(500);
    }
  }
}
