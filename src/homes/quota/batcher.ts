/**
 * Gathers the quota changes many user reconciles ask for at about the same time into one
 * allocation round trip and one driver call, so a thousand users converging means a handful of
 * `xfs_quota` processes rather than a thousand.
 */
import type { ProjectIdAllocator } from '../../desired/project-ids.js';
import type { QuotaDriver, QuotaEntry } from './driver.js';

export interface QuotaRequest {
  readonly project: string;
  readonly path: string;
  readonly hardLimitBytes: number;
}

interface Waiter {
  readonly request: QuotaRequest;
  readonly resolve: (entry: QuotaEntry) => void;
  readonly reject: (error: unknown) => void;
}

export interface QuotaBatcherOptions {
  readonly driver: QuotaDriver;
  readonly allocator: ProjectIdAllocator;
  /** A batch runs once no request has come for this long... */
  readonly quietMs?: number;
  /** ...or once its first request has waited this long, or it is this big. */
  readonly maxWaitMs?: number;
  readonly maxBatch?: number;
}

export class QuotaBatcher {
  private waiting: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private firstWaitingAt = 0;
  private readonly quietMs: number;
  private readonly maxWaitMs: number;
  private readonly maxBatch: number;
  /**
   * The batch being applied. The next one gathers meanwhile and runs when it is done: the driver
   * runs one call at a time anyway, and a batch cut while another waits would only mean one more
   * xfs_quota process (at 10,000 users, 150 runs of ~65 users instead of about ten).
   */
  private running: Promise<void> | undefined;

  constructor(private readonly options: QuotaBatcherOptions) {
    this.quietMs = options.quietMs ?? 25;
    this.maxWaitMs = options.maxWaitMs ?? 500;
    this.maxBatch = options.maxBatch ?? 1000;
  }

  /** Sets one folder's limit; resolves with the entry applied (with its project ID) once its batch ran. */
  apply(request: QuotaRequest): Promise<QuotaEntry> {
    return new Promise<QuotaEntry>((resolve, reject) => {
      if (this.waiting.length === 0) this.firstWaitingAt = Date.now();
      this.waiting.push({ request, resolve, reject });
      // While requests keep coming (a resync of thousands of users), keep gathering, within bounds.
      const waited = Date.now() - this.firstWaitingAt;
      const full = this.waiting.length >= this.maxBatch || waited >= this.maxWaitMs;
      this.flushAfter(full ? 0 : Math.min(this.quietMs, this.maxWaitMs - waited));
    });
  }

  private flushAfter(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startFlush();
    }, delayMs);
  }

  private startFlush(): void {
    if (this.running || this.waiting.length === 0) return;
    this.running = this.flush().finally(() => {
      this.running = undefined;
      // What gathered during the run has waited long enough: run it now, up to maxBatch.
      if (this.waiting.length > 0) this.flushAfter(0);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.waiting.slice(0, this.maxBatch);
    this.waiting = this.waiting.slice(batch.length);
    if (this.waiting.length > 0) this.firstWaitingAt = Date.now();
    if (batch.length === 0) return;
    try {
      const ids = await this.options.allocator.allocate([...new Set(batch.map((w) => w.request.project))]);
      const entries = batch.map((w) => {
        const id = ids.get(w.request.project);
        if (id === undefined) throw new Error(`no project ID allocated for ${w.request.project}`);
        return { ...w.request, id };
      });
      await this.options.driver.apply(entries);
      batch.forEach((w, index) => {
        const entry = entries[index];
        if (entry) w.resolve(entry);
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}
