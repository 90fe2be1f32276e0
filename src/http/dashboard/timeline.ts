/**
 * `/events/stream`: the controller's drifts and repairs as server-sent events. A new connection
 * gets the latest entries, oldest first, then an `event: ready`, then every new entry as it is
 * written; a reconnecting EventSource sends `Last-Event-ID` and resumes right after it. A comment
 * line goes out every `heartbeatMs` so proxies keep the connection open and a dead peer is found.
 * The Redis follow ends as soon as the client goes away.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventStream, StoredEvent } from '../../desired/events.js';
import { RateLimitedError, describeError } from '../../errors.js';
import type { Logger } from '../../log.js';

/** What the page draws for one entry: values already shortened to text, Secret values hidden. */
export interface TimelineEvent {
  readonly id: string;
  readonly ts: string;
  readonly level: string;
  readonly msg: string;
  readonly kind: string;
  readonly name: string;
  /** `drift` (found), `repair` (an action taken), `failure` (an error or a warning), or `info`. */
  readonly tone: 'drift' | 'repair' | 'failure' | 'info';
  readonly action?: readonly string[];
  readonly drift?: readonly { readonly path: string; readonly desired: string; readonly actual: string }[];
  readonly durationMs?: number;
  readonly message?: string;
}

/** What the timeline reads; {@link EventStream} (RedisEventStream) is one. */
export type EventReader = Pick<EventStream, 'range' | 'lastId' | 'follow'>;

export interface TimelineOptions {
  readonly reader: EventReader;
  readonly log: Logger;
  /** Entries sent on connect. Default 50. */
  readonly backlog?: number;
  /** Default 15 s. */
  readonly heartbeatMs?: number;
  /** Open streams at once; past it new ones get 429. Each holds one Redis connection. Default 32. */
  readonly maxStreams?: number;
}

const REPAIR_VERBS = new Set([
  'created',
  'updated',
  'recreated',
  'started',
  'stopped',
  'removed',
  'pruned',
  'resumed',
  'archived',
  'retained',
]);
/** A stream entry ID as Redis writes them, as `Last-Event-ID` must carry it. */
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
/** A client this far behind is dropped rather than buffered for without bound. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const VALUE_CHARS = 120;

export class TimelineStreams {
  private readonly backlog: number;
  private readonly heartbeatMs: number;
  private readonly maxStreams: number;
  private readonly open = new Map<AbortController, Promise<void>>();

  constructor(private readonly options: TimelineOptions) {
    this.backlog = options.backlog ?? 50;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.maxStreams = options.maxStreams ?? 32;
  }

  /** Serves one stream until the client or the server closes it. Refuses (429) past `maxStreams`. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.open.size >= this.maxStreams) throw new RateLimitedError(5);
    const abort = new AbortController();
    const done = this.serve(req, res, abort).finally(() => this.open.delete(abort));
    this.open.set(abort, done);
    return done;
  }

  /** Ends every open stream and waits for their Redis follows to stop. */
  async close(): Promise<void> {
    for (const abort of this.open.keys()) abort.abort();
    await Promise.allSettled(this.open.values());
  }

  private async serve(req: IncomingMessage, res: ServerResponse, abort: AbortController): Promise<void> {
    const { signal } = abort;
    const stop = (): void => abort.abort();
    res.on('close', stop);
    const write = (chunk: string): void => {
      if (signal.aborted || res.writableEnded) return;
      res.write(chunk);
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        this.options.log.info(
          { buffered: res.writableLength },
          'status page stream dropped: client too slow',
        );
        abort.abort();
        res.destroy();
      }
    };
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // nginx would otherwise hold events back to fill its buffer.
      'x-accel-buffering': 'no',
    });
    const heartbeat = setInterval(() => write(': keep-alive\n\n'), this.heartbeatMs);
    try {
      write('retry: 3000\n\n');
      let from = lastEventId(req);
      if (from === undefined) {
        // Reading back from the newest ID and following from that same ID leaves no gap and no
        // repeat. A Redis that does not answer must not keep a closed stream (or shutdown) waiting.
        const { reader } = this.options;
        const newest = await Promise.race([reader.lastId(), aborted(signal)]);
        const latest =
          newest === undefined
            ? []
            : await Promise.race([reader.range({ count: this.backlog, upTo: newest }), aborted(signal)]);
        for (const event of latest) write(frame(event));
        from = newest ?? '0-0';
      }
      write('event: ready\ndata: {}\n\n');
      for await (const event of this.options.reader.follow(from, signal)) write(frame(event));
    } catch (error: unknown) {
      if (!signal.aborted) {
        this.options.log.warn({ err: describeError(error) }, 'status page stream failed');
      }
    } finally {
      clearInterval(heartbeat);
      res.off('close', stop);
      if (!res.writableEnded && !res.destroyed) res.end();
    }
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = (): void => reject(new Error('the stream was closed'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

function lastEventId(req: IncomingMessage): string | undefined {
  const header = req.headers['last-event-id'];
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && STREAM_ID.test(value.trim()) ? value.trim() : undefined;
}

/** One SSE message: the entry ID as `id:` so a reconnect resumes after it; JSON has no raw newline. */
function frame(event: StoredEvent): string {
  return `id: ${event.id}\ndata: ${JSON.stringify(toTimelineEvent(event))}\n\n`;
}

export function toTimelineEvent(event: StoredEvent): TimelineEvent {
  const hidden = event.kind === 'Secret';
  const verb = event.verb ?? event.msg;
  const tone =
    event.level === 'error' || event.msg === 'reconcile failed'
      ? 'failure'
      : event.msg === 'drift detected'
        ? 'drift'
        : REPAIR_VERBS.has(verb)
          ? 'repair'
          : event.level === 'warn'
            ? 'failure'
            : 'info';
  return {
    id: event.id,
    ts: event.ts,
    level: event.level,
    msg: event.msg,
    kind: event.kind,
    name: event.name,
    tone,
    ...(event.action !== undefined && { action: event.action }),
    ...(event.drift !== undefined && {
      drift: event.drift.map((d) => ({
        path: d.path,
        // Secret drift is redacted by the writer already; this keeps it so whatever was written.
        desired: hidden ? '(hidden)' : shortText(d.desired),
        actual: hidden ? '(hidden)' : shortText(d.actual),
      })),
    }),
    ...(event.durationMs !== undefined && { durationMs: event.durationMs }),
    ...(event.message !== undefined && { message: event.message }),
  };
}

function shortText(value: unknown): string {
  const text = value === undefined ? '(none)' : typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > VALUE_CHARS ? `${text.slice(0, VALUE_CHARS - 1)}…` : text;
}
