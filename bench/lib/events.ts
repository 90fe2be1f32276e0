/**
 * The bench's own view of the Docker event stream: every event is timestamped on arrival, kept
 * when it concerns this run's objects, and wakes whoever waits for the next one. Write counting
 * (flapping, storm) is done from these events, never from the controller's logs.
 */
import type Dockerode from 'dockerode';
import { now } from './util.js';

export interface BenchEvent {
  readonly type: string;
  readonly action: string;
  readonly id: string;
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Engine time, ns since the epoch. */
  readonly timeNano: number;
  /** `swarm` for the cluster's own objects, `local` for this engine's (an overlay network's local copy). */
  readonly scope: string;
  /** performance.now() when the bench read it. */
  readonly receivedAt: number;
}

interface RawEvent {
  scope?: string;
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  timeNano?: number;
}

const SERVICE_LABEL = 'com.docker.swarm.service.name';

export class EventWatcher {
  readonly events: BenchEvent[] = [];
  private stream: NodeJS.ReadableStream | undefined;
  private wakers: (() => void)[] = [];
  private listeners: ((event: BenchEvent) => void)[] = [];

  /** @param mine which events to keep (all wake waiters) */
  constructor(
    private readonly docker: Dockerode,
    private readonly mine: (event: BenchEvent) => boolean,
  ) {}

  private stopped = false;
  private lastNano = 0;
  /** Times the stream dropped (the engine restarted) and was opened again. */
  reconnects = 0;

  async start(): Promise<void> {
    this.stopped = false;
    await this.open();
  }

  /** Opens the stream, resuming after the last event seen; reopens it whenever it drops. */
  private async open(): Promise<void> {
    const since = this.lastNano > 0 ? Math.floor(this.lastNano / 1e9) : undefined;
    const stream = await this.docker.getEvents(since === undefined ? {} : { since });
    this.stream = stream;
    const seen = this.lastNano;
    const reopen = (): void => {
      if (this.stopped || this.stream !== stream) return;
      this.stream = undefined;
      const retry = (): void => {
        if (this.stopped) return;
        this.open().then(
          () => {
            this.reconnects++;
          },
          () => setTimeout(retry, 500),
        );
      };
      setTimeout(retry, 200);
    };
    stream.on('end', reopen);
    stream.on('close', reopen);
    stream.on('error', reopen);
    let buffer = '';
    stream.on('data', (chunk: Buffer) => {
      const receivedAt = now();
      buffer += chunk.toString('utf8');
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const text = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
        if (!text) continue;
        let raw: RawEvent;
        try {
          raw = JSON.parse(text) as RawEvent;
        } catch {
          continue;
        }
        // Resuming with `since` (whole seconds) replays some events: skip those already seen.
        if (seen > 0 && (raw.timeNano ?? 0) <= seen) continue;
        this.lastNano = Math.max(this.lastNano, raw.timeNano ?? 0);
        const attributes = raw.Actor?.Attributes ?? {};
        const event: BenchEvent = {
          type: raw.Type ?? '',
          action: raw.Action ?? raw.status ?? '',
          id: raw.Actor?.ID ?? raw.id ?? '',
          name: attributes.name ?? '',
          attributes,
          timeNano: raw.timeNano ?? 0,
          scope: raw.scope ?? '',
          receivedAt,
        };
        if (this.mine(event)) {
          this.events.push(event);
          for (const listener of this.listeners) listener(event);
        }
        const wakers = this.wakers;
        this.wakers = [];
        for (const wake of wakers) wake();
      }
    });
  }

  /** Resolves at the next event of any kind (so a check can run), or after `ms`. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakers = this.wakers.filter((w) => w !== wake);
        resolve();
      }, ms);
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.wakers.push(wake);
    });
  }

  onEvent(listener: (event: BenchEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  since(t: number): BenchEvent[] {
    return this.events.filter((e) => e.receivedAt >= t);
  }

  stop(): void {
    this.stopped = true;
    const stream = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    stream?.destroy?.();
    this.stream = undefined;
    for (const wake of this.wakers.splice(0)) wake();
  }
}

/** Whether an event concerns an object whose name starts with one of `prefixes`. */
export function concerns(event: BenchEvent, prefixes: readonly string[]): boolean {
  const candidates = [
    event.name,
    event.attributes[SERVICE_LABEL] ?? '',
    event.type === 'volume' ? event.id : '',
  ];
  return candidates.some((c) => c !== '' && prefixes.some((p) => c.replace(/^\//, '').startsWith(p)));
}

export type WriteClass = 'write' | 'side-effect' | 'read';

/**
 * What an event says happened. `write`: an API write to an object (create, update, remove,
 * start/stop of a plain container, connect/disconnect of a plain container). `side-effect`:
 * what Swarm does by itself after a write (task containers starting and stopping, their network
 * endpoints, volume mounts). `read`: healthchecks (exec_*), health_status, attach, top, ...
 */
export function classify(event: BenchEvent, plainContainerIds: ReadonlySet<string>): WriteClass {
  const action = event.action.split(':')[0]?.trim() ?? event.action;
  switch (event.type) {
    case 'service':
    case 'config':
    case 'secret':
      return ['create', 'update', 'remove'].includes(action) ? 'write' : 'read';
    case 'network':
      if (action === 'create' || action === 'destroy' || action === 'remove') return 'write';
      if (action === 'connect' || action === 'disconnect')
        return plainContainerIds.has(event.attributes.container ?? '') ? 'write' : 'side-effect';
      return 'read';
    case 'volume':
      if (action === 'create' || action === 'destroy') return 'write';
      return action === 'mount' || action === 'unmount' ? 'side-effect' : 'read';
    case 'container': {
      const task = event.attributes[SERVICE_LABEL] !== undefined;
      const lifecycle = [
        'create',
        'start',
        'stop',
        'kill',
        'die',
        'destroy',
        'restart',
        'update',
        'rename',
        'pause',
        'unpause',
      ];
      if (!lifecycle.includes(action)) return 'read';
      if (task) return 'side-effect';
      // die and kill follow a stop; count the stop call once.
      if (action === 'die' || action === 'kill') return 'side-effect';
      return 'write';
    }
    default:
      return 'read';
  }
}
