/**
 * The real `swarmkeeper` CLI (bin/swarmkeeper.js on dist/) as a child process, for tests that kill
 * it with SIGKILL or run two controllers side by side. Its pino lines are parsed as they arrive.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LogLine } from './controller.js';

const run = promisify(execFile);
const BIN = path.resolve('bin/swarmkeeper.js');

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(full)).mtimeMs);
  }
  return newest;
}

/** `npm run build` runs in pretest; this rebuilds dist/ when a source file is newer than it (a run of one file). */
export async function ensureBuilt(): Promise<void> {
  const built = await stat('dist/cli/main.js').then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built >= (await newestMtime('src'))) return;
  try {
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    // tsc still emits on type errors (another change in progress elsewhere); only a missing output is fatal.
    const after = await stat('dist/cli/main.js').then(
      (s) => s.mtimeMs,
      () => 0,
    );
    if (after <= built) throw error;
  }
}

/** Only what the CLI needs: nothing of the test process's own environment leaks in. */
function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    SWARMKEEPER_HTTP_ADDR: '127.0.0.1:0',
    SWARMKEEPER_LOG_LEVEL: 'debug',
  };
}

export class ControllerProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;

  private constructor(args: readonly string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      env: { ...baseEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let pending = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line !== '') {
          try {
            this.lines.push(JSON.parse(line) as LogLine);
          } catch {
            this.lines.push({ msg: '(unparsed stdout)', raw: line });
          }
        }
        newline = pending.indexOf('\n');
      }
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // 'close', not 'exit': only then has everything the process wrote been read.
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
  }

  /** `swarmkeeper run` (or other arguments) with `env` on top of a minimal environment. */
  static start(env: Record<string, string>, args: readonly string[] = ['run']): ControllerProcess {
    return new ControllerProcess(args, env);
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('the controller process did not start');
    return pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  logsWith(msg: string, fields: Record<string, unknown> = {}): LogLine[] {
    return this.lines.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  }

  /** Resolves with the first line (already seen or still to come) with that message and fields. */
  async waitForLog(msg: string, fields: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logsWith(msg, fields)[0];
      if (found) return found;
      if (!this.running) throw new Error(`exited before logging "${msg}":\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`no "${msg}" within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Waits for the process to end on its own (e.g. a SIGKILL it sent itself). */
  async waitForExit(timeoutMs = 30_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`still running after ${timeoutMs} ms:\n${this.tail()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM (the controller drains and exits 0), then SIGKILL if it has not gone within `graceMs`. */
  async stop(graceMs = 25_000): Promise<Exit> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last lines, for failure messages. */
  tail(count = 15): string {
    return [
      ...this.lines.slice(-count).map((l) => JSON.stringify(l)),
      ...(this.stderr ? [`stderr: ${this.stderr.slice(-2000)}`] : []),
    ].join('\n');
  }
}
