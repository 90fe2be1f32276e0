/** Small helpers shared by every benchmark: timing, percentiles, waiting, logging. */
import { performance } from 'node:perf_hooks';
import { createServer } from 'node:net';

export const now = (): number => performance.now();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Progress goes to stderr so a run can be followed; results go to bench/results. */
export function say(message: string): void {
  const stamp = new Date().toISOString().slice(11, 23);
  process.stderr.write(`[bench ${stamp}] ${message}\n`);
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Nearest-rank percentile of an unsorted sample; undefined for an empty one. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export interface Summary {
  readonly n: number;
  readonly min?: number;
  readonly p50?: number;
  readonly p95?: number;
  readonly max?: number;
  readonly mean?: number;
}

export function summarize(values: readonly number[], digits = 1): Summary {
  if (values.length === 0) return { n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    min: round(sorted[0] ?? 0, digits),
    p50: round(percentile(sorted, 50) ?? 0, digits),
    p95: round(percentile(sorted, 95) ?? 0, digits),
    max: round(sorted[sorted.length - 1] ?? 0, digits),
    mean: round(sum / sorted.length, digits),
  };
}

/** Polls `read` until it returns something other than undefined/false, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  read: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 100 } = options;
  const deadline = now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await read();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** True when nothing listens on `port` on any address (what a host-mode published port needs). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** `count` free TCP ports, picked at random from 20000-29999 so parallel runs rarely meet. */
export async function freePorts(count: number, avoid: ReadonlySet<number> = new Set()): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; attempt < 2000 && ports.length < count; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (avoid.has(port) || ports.includes(port)) continue;
    if (await portFree(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`could not find ${count} free ports`);
  return ports;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** HTTP status of a dockerode error, if any. */
export function statusCode(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const code = (error as { statusCode?: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

export async function ignore404(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (statusCode(error) !== 404) throw error;
  }
}
