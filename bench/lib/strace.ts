/**
 * Filesystem syscalls of the controller process, counted with `strace -f` attached for a window.
 * Lines carry the thread id and a timestamp; bursts are cut at gaps of a second, like the CPU
 * samples. Syscalls of the controller's own threads are counted apart from those of the child
 * processes it starts (xfs_quota).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { sleep } from './util.js';

export function straceAvailable(): boolean {
  return spawnSync('strace', ['-V']).status === 0;
}

/** Calls that touch the filesystem by path, or by a descriptor open on a file or directory. */
const PATH_CALLS = new Set([
  'open',
  'openat',
  'openat2',
  'stat',
  'lstat',
  'newfstatat',
  'statx',
  'access',
  'faccessat',
  'faccessat2',
  'mkdir',
  'mkdirat',
  'rmdir',
  'unlink',
  'unlinkat',
  'rename',
  'renameat',
  'renameat2',
  'chown',
  'lchown',
  'fchownat',
  'chmod',
  'fchmodat',
  'readlink',
  'readlinkat',
  'utimensat',
  'symlink',
  'symlinkat',
  'link',
  'linkat',
  'truncate',
  'statfs',
  'getcwd',
]);
const FD_CALLS = new Set([
  'read',
  'pread64',
  'readv',
  'preadv',
  'write',
  'pwrite64',
  'writev',
  'pwritev',
  'close',
  'fstat',
  'fstatfs',
  'getdents64',
  'fchown',
  'fchmod',
  'fsync',
  'fdatasync',
  'ftruncate',
  'lseek',
  'fcntl',
  'ioctl',
]);

export interface StraceCounts {
  /** Filesystem calls by the controller's threads. */
  readonly fsCalls: number;
  readonly fsByCall: Readonly<Record<string, number>>;
  /** Every syscall of the controller's threads (sockets, epoll, futex included). */
  readonly allCalls: number;
  /** Child processes started (successful execve, not counting /usr/bin/env). */
  readonly childExecs: number;
  readonly childCalls: number;
}

interface Line {
  readonly started: boolean;
  readonly pid: number;
  /** Epoch ms. */
  readonly t: number;
  readonly call: string;
  readonly fsKind: boolean;
}

const LINE = /^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]/;

function parse(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    const m = LINE.exec(raw);
    if (!m) continue;
    const [, pid, epoch, call] = m;
    if (raw.includes('resumed>') && raw.includes('<...')) continue; // counted at the unfinished half
    const fd = /^\d+\s+\S+\s+[a-z0-9_]+\((\d+)<([^>]*)>/.exec(raw);
    let fsKind = PATH_CALLS.has(call!);
    if (!fsKind && FD_CALLS.has(call!) && fd) {
      const target = fd[2] ?? '';
      fsKind = target.startsWith('/') && !target.startsWith('/dev/') && !target.startsWith('/proc/');
    }
    // A process started is one successful execve; `#!/usr/bin/env node` scripts exec env first,
    // and env tries each PATH entry in turn (failed execve calls).
    const started = call === 'execve' && /\) = 0$/.test(raw) && !raw.includes('execve("/usr/bin/env"');
    lines.push({
      started,
      pid: Number(pid),
      t: Number(epoch) * 1000,
      call: call!,
      fsKind,
    });
  }
  return lines;
}

export class StraceTrace {
  constructor(
    private readonly lines: readonly Line[],
    private readonly threads: ReadonlySet<number>,
  ) {}

  /** Counts of the calls made between two epoch-ms instants (inclusive). */
  between(fromMs: number, toMs: number): StraceCounts {
    const fsByCall: Record<string, number> = {};
    let allCalls = 0;
    let childExecs = 0;
    let childCalls = 0;
    for (const l of this.lines) {
      if (l.t < fromMs || l.t > toMs) continue;
      if (this.threads.has(l.pid)) {
        allCalls++;
        if (l.fsKind) fsByCall[l.call] = (fsByCall[l.call] ?? 0) + 1;
      } else {
        childCalls++;
        if (l.started) childExecs++;
      }
    }
    return {
      fsCalls: Object.values(fsByCall).reduce((a, b) => a + b, 0),
      fsByCall,
      allCalls,
      childExecs,
      childCalls,
    };
  }

  get first(): number {
    return this.lines[0]?.t ?? 0;
  }

  get last(): number {
    return this.lines[this.lines.length - 1]?.t ?? 0;
  }
}

/** Runs `during` with strace attached to `pid` and all its threads (and children), then detaches. */
export async function straceDuring<T>(
  pid: number,
  outFile: string,
  during: () => Promise<T>,
): Promise<{ result: T; trace: StraceTrace }> {
  const threads = new Set(readdirSync(`/proc/${pid}/task`).map(Number));
  const strace = spawn('strace', ['-f', '-qq', '-ttt', '-y', '-o', outFile, '-p', String(pid)], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => strace.once('exit', resolve));
  await sleep(500); // attaching to every thread takes a moment
  let result: T;
  try {
    result = await during();
  } finally {
    // Threads created during the window belong to the controller too (libuv starts them lazily).
    for (const t of readdirSync(`/proc/${pid}/task`)) threads.add(Number(t));
    strace.kill('SIGINT');
    await exited;
  }
  const lines = parse(await readFile(outFile, 'utf8'));
  return { result, trace: new StraceTrace(lines, threads) };
}
