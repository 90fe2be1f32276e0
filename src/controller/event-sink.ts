/**
 * The events stream's feed: a pino destination that main.ts puts next to stdout with
 * `pino.multistream`. The controller already logs exactly one line per drift (`drift detected`)
 * and per action (a line with `verb` and `durationMs`), so the sink reads those lines instead of
 * every call site writing twice. It keeps the ones about a resource that are drifts, actions,
 * warnings or errors, reduces each to the stream's fields (src/desired/events.ts) and appends them
 * in batches.
 *
 * It must never slow the controller down or fail it: `write` only parses and buffers, appends run
 * in the background one batch at a time, and while Redis is away the buffer keeps the newest
 * `capacity` entries, dropping (and counting) the oldest.
 */
import type { DriftEntry } from '../desired/store.js';
import type { EventEntry, EventLevel } from '../desired/events.js';
import { isKind } from '../resources/kinds/index.js';

/** The part of an event stream the sink needs. `ready: false` means "hold entries back for now". */
export interface EventAppender {
  append(entries: readonly EventEntry[]): Promise<void>;
  readonly ready?: boolean;
}

export interface EventSinkOptions {
  /** Entries held while Redis is away; beyond it the oldest are dropped. Default 5,000. */
  readonly capacity?: number;
  /** How long entries gather before a batch goes out. Default 50 ms. */
  readonly flushDelayMs?: number;
  /** Pause after a failed or refused append. Default 1 s. */
  readonly retryDelayMs?: number;
  /** Entries per append. Default 500. */
  readonly batchSize?: number;
  /**
   * Called (outside any `write`) when appends work again after entries were dropped, with how many
   * were lost, so the caller can log it once. The line it logs names no resource, so it does not
   * come back into the sink.
   */
  readonly onDropped?: (dropped: number) => void;
}

/** pino's numeric levels. */
const LEVEL_INFO = 30;
const LEVEL_WARN = 40;
const LEVEL_ERROR = 50;

/** A drift value longer than this (as JSON) is cut, so one huge env map cannot bloat the stream. */
const MAX_VALUE_CHARS = 1_024;
const MAX_MESSAGE_CHARS = 2_048;

export class EventSink {
  private readonly capacity: number;
  private readonly flushDelayMs: number;
  private readonly retryDelayMs: number;
  private readonly batchSize: number;
  private readonly onDropped: ((dropped: number) => void) | undefined;
  private buffer: EventEntry[] = [];
  private target: EventAppender | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private droppedTotal = 0;
  private droppedUnreported = 0;
  private appendedTotal = 0;

  constructor(options: EventSinkOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? 5_000);
    this.flushDelayMs = options.flushDelayMs ?? 50;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.batchSize = Math.max(1, options.batchSize ?? 500);
    this.onDropped = options.onDropped;
  }

  /** Entries dropped since start because the buffer was full. */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Entries appended since start. */
  get appended(): number {
    return this.appendedTotal;
  }

  /** Entries waiting to be appended. */
  get pending(): number {
    return this.buffer.length;
  }

  /** pino's destination interface: one serialized log line (or several) per call. Never throws. */
  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        continue;
      }
      const entry = eventFromLogRecord(record);
      if (entry) this.push(entry);
    }
  }

  /** Starts appending to `target`; entries logged before are sent too. */
  attach(target: EventAppender): void {
    this.target = target;
    this.schedule(0);
  }

  /**
   * Sends what is buffered, waiting at most `timeoutMs`, then stops appending. What is left is
   * kept, so a later `attach` (another leader term, say) still sends it.
   */
  async close(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.cancelTimer();
    while (this.target && this.buffer.length > 0 && Date.now() < deadline) {
      const sent = await Promise.race([
        this.flushOnce().then(() => true),
        delay(Math.max(0, deadline - Date.now())).then(() => false),
      ]);
      if (!sent || this.target.ready === false) break;
    }
    this.cancelTimer();
    this.target = undefined;
  }

  private push(entry: EventEntry): void {
    this.buffer.push(entry);
    if (this.buffer.length > this.capacity) {
      const excess = this.buffer.length - this.capacity;
      this.buffer.splice(0, excess);
      this.droppedTotal += excess;
      this.droppedUnreported += excess;
    }
    this.schedule(this.flushDelayMs);
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined || this.target === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flushOnce().then(() => {
        if (this.buffer.length > 0) this.schedule(this.healthy() ? 0 : this.retryDelayMs);
      });
    }, delayMs);
    // Pending events never keep the process alive; close() sends them on the way out.
    this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private healthy(): boolean {
    return this.target !== undefined && this.target.ready !== false;
  }

  /** One batch, if none is in flight and the target takes entries now. Never rejects. */
  private flushOnce(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const target = this.target;
    if (!target || target.ready === false || this.buffer.length === 0) return Promise.resolve();
    const batch = this.buffer.splice(0, this.batchSize);
    this.inFlight = target
      .append(batch)
      .then(
        () => {
          this.appendedTotal += batch.length;
          if (this.droppedUnreported > 0) {
            const dropped = this.droppedUnreported;
            this.droppedUnreported = 0;
            this.onDropped?.(dropped);
          }
        },
        () => {
          // Back to the front, in order; whatever no longer fits is the oldest and goes.
          this.buffer = [...batch, ...this.buffer];
          const excess = this.buffer.length - this.capacity;
          if (excess > 0) {
            this.buffer.splice(0, excess);
            this.droppedTotal += excess;
            this.droppedUnreported += excess;
          }
          return delay(this.retryDelayMs);
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}

/**
 * The stream entry for one parsed pino line, or undefined for lines that are not about a
 * resource, or are info lines that are neither a drift nor an action.
 */
export function eventFromLogRecord(record: unknown): EventEntry | undefined {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return undefined;
  const r = record as Record<string, unknown>;
  const level = levelOf(r.level);
  const msg = text(r.msg);
  if (level === undefined || msg === undefined) return undefined;

  let kind = text(r.kind);
  let name = text(r.name);
  let verb = text(r.verb);
  let message = errorText(r.err) ?? text(r.message) ?? text(r.reason);
  if (msg === 'network recreate step') {
    // The actuator's step events name the network and the object touched, not kind/name.
    kind = 'Network';
    name = text(r.network);
    verb = text(r.step);
    const target = text(r.target);
    const result = text(r.result);
    message = [target && `${text(r.targetKind) ?? 'object'} ${target}`, result].filter(Boolean).join(': ');
  }
  if (kind === undefined || !isKind(kind) || name === undefined || name === '') return undefined;
  const drift = msg === 'drift detected';
  if (!drift && verb === undefined && level === 'info') return undefined;

  const action = Array.isArray(r.action) ? r.action.filter((a): a is string => typeof a === 'string') : [];
  const driftEntries = Array.isArray(r.drift) ? r.drift.flatMap(driftEntry) : [];
  const durationMs =
    typeof r.durationMs === 'number' && Number.isFinite(r.durationMs) ? r.durationMs : undefined;
  return {
    ts: timestamp(r.time),
    level,
    msg,
    kind,
    name,
    ...(verb !== undefined && { verb }),
    ...(action.length > 0 && { action }),
    ...(driftEntries.length > 0 && { drift: driftEntries }),
    ...(durationMs !== undefined && { durationMs }),
    ...(message !== undefined && message !== '' && { message: cut(message, MAX_MESSAGE_CHARS) }),
  };
}

function levelOf(value: unknown): EventLevel | undefined {
  if (typeof value !== 'number') return undefined;
  if (value >= LEVEL_ERROR) return 'error';
  if (value >= LEVEL_WARN) return 'warn';
  if (value >= LEVEL_INFO) return 'info';
  return undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** `err` is a describeError string in this codebase; a serialized Error object is read too. */
function errorText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) return text((value as { message?: unknown }).message);
  return undefined;
}

function timestamp(value: unknown): string {
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(value).toISOString();
  return new Date().toISOString();
}

/** Only `{path, desired, actual}`, whatever else the line carried, with long values cut. */
function driftEntry(value: unknown): DriftEntry[] {
  if (typeof value !== 'object' || value === null) return [];
  const entry = value as Record<string, unknown>;
  if (typeof entry.path !== 'string') return [];
  return [{ path: entry.path, desired: bounded(entry.desired), actual: bounded(entry.actual) }];
}

function bounded(value: unknown): unknown {
  if (value === undefined) return null;
  const json = JSON.stringify(value);
  return json.length <= MAX_VALUE_CHARS ? value : cut(json, MAX_VALUE_CHARS);
}

function cut(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
