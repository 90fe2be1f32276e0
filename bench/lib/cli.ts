/** Runs the built `swarmkeeper` CLI (bin/swarmkeeper.js) and other commands, timed. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { APP_ROOT, REPO_ROOT } from './context.js';
import { now } from './util.js';

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export function runCommand(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<CommandResult> {
  const started = now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: now() - started,
      }),
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** `node bin/swarmkeeper.js ARGS` against one Redis and prefix. */
export function swarmkeeper(
  args: readonly string[],
  options: { redisUrl: string; prefix: string },
): Promise<CommandResult> {
  return runCommand(process.execPath, [path.join(APP_ROOT, 'bin/swarmkeeper.js'), ...args], {
    env: {
      ...process.env,
      REDIS_URL: options.redisUrl,
      SWARMKEEPER_PREFIX: options.prefix,
    },
  });
}

export function commandLine(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
