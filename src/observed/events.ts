/**
 * The Docker event stream as an Observable, with informer discipline: the first item, and the first
 * item after every reconnect, is `relist`, because events can be missed (moby/moby #36834) and the
 * stream drops when the engine restarts. Events only say which object to look at; the consumer
 * re-reads state rather than trusting their payload.
 */
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type Dockerode from 'dockerode';
import pRetry from 'p-retry';
import { Observable } from 'rxjs';
import type { DockerCallCounter } from './call-counter.js';
import { field, stringField, stringMapField } from './fields.js';

export const OBSERVED_EVENT_TYPES = [
  'service',
  'network',
  'volume',
  'config',
  'secret',
  'container',
  'node',
] as const;
export type ObservedEventType = (typeof OBSERVED_EVENT_TYPES)[number];

/** Something happened to one Docker object. */
export interface DockerObjectEvent {
  readonly type: ObservedEventType;
  /** Docker's action: `create`, `update`, `remove`, `start`, `die`, `connect`, `health_status: healthy`, ... */
  readonly action: string;
  /** Actor.ID: the object's ID; for volumes, which have none, the volume name. */
  readonly id: string;
  /** The object's name, when the event carries it (volume events always do: their id is the name). */
  readonly name?: string;
  /**
   * Container labels. Only container events carry labels, and Docker mixes them into the attributes;
   * these are the attributes with a dotted key (`io.swarmkeeper.managed`, `com.docker.swarm.service.name`).
   */
  readonly labels?: Readonly<Record<string, string>>;
  /** Actor.Attributes as sent. */
  readonly attributes: Readonly<Record<string, string>>;
  /** When the engine logged the event, in milliseconds since the epoch by the engine's clock. */
  readonly time: number;
}

export type RelistReason = 'subscribed' | 'reconnected';

/** The stream is (re)connected: list everything again, since events may have been missed before now. */
export interface RelistEvent {
  readonly type: 'relist';
  readonly reason: RelistReason;
}

export type DockerEvent = DockerObjectEvent | RelistEvent;

export type EventStreamNoticeKind = 'connected' | 'connect-failed' | 'stream-ended' | 'unparseable-event';
export type EventStreamNoticeFields = Readonly<Record<string, string | number | boolean>>;

/** The one dockerode method the stream needs; a Dockerode client is one. */
export interface DockerEventSource {
  getEvents(options?: Dockerode.GetEventsOptions): Promise<NodeJS.ReadableStream>;
}

export interface DockerEventsOptions {
  /** Told about connects, failed connects, dropped streams and bad lines; this module logs nothing itself. */
  readonly onNotice?: (kind: EventStreamNoticeKind, fields: EventStreamNoticeFields) => void;
  /** Counts each `getEvents` request. */
  readonly counter?: DockerCallCounter;
  /** Reconnect backoff, doubling from `minMs` (default 1000) to `maxMs` (default 30000). */
  readonly backoff?: { readonly minMs?: number; readonly maxMs?: number };
}

/**
 * Resuming asks for events from this long before the newest one seen, and drops those already
 * delivered. The overlap covers events the engine stamps a little out of order: it takes the time
 * before it takes the lock that orders publication.
 */
const RESUME_OVERLAP_NS = 1_000_000_000n;
/** A line longer than this is not an event; it means the stream is corrupt, so it is reopened. */
const MAX_LINE_CHARS = 1024 * 1024;

/**
 * Docker events for the object types the controller manages. Never completes on its own: a dropped
 * stream is reopened (resuming with `since`) with backoff, until the subscriber unsubscribes.
 * Unsubscribing aborts the request and destroys the HTTP stream.
 */
export function dockerEvents(
  source: DockerEventSource,
  options: DockerEventsOptions = {},
): Observable<DockerEvent> {
  const minMs = options.backoff?.minMs ?? 1000;
  const maxMs = options.backoff?.maxMs ?? 30_000;
  const notice = options.onNotice ?? (() => undefined);

  return new Observable<DockerEvent>((subscriber) => {
    const stopped = new AbortController();
    const cursor = new ResumeCursor();
    let current: Connection | undefined;

    const connect = async (): Promise<Connection> => {
      const request = new AbortController();
      const abortRequest = (): void => request.abort();
      stopped.signal.addEventListener('abort', abortRequest, { once: true });
      try {
        const since = cursor.sinceSeconds();
        options.counter?.record('getEvents');
        const stream = await source.getEvents({
          filters: { type: [...OBSERVED_EVENT_TYPES] },
          ...(since === undefined ? {} : { since }),
          abortSignal: request.signal,
        });
        return { stream, request };
      } finally {
        stopped.signal.removeEventListener('abort', abortRequest);
      }
    };

    const deliver = (line: string): void => {
      const parsed = parseEventLine(line);
      if (parsed === 'invalid') {
        notice('unparseable-event', { line: line.slice(0, 200) });
        return;
      }
      if (parsed === undefined || !cursor.admit(parsed)) return;
      subscriber.next(parsed.event);
    };

    const run = async (): Promise<void> => {
      let reason: RelistReason = 'subscribed';
      let quickDrops = 0;
      while (!stopped.signal.aborted) {
        const connection = await pRetry(connect, {
          retries: Number.POSITIVE_INFINITY,
          factor: 2,
          minTimeout: minMs,
          maxTimeout: maxMs,
          signal: stopped.signal,
          onFailedAttempt: ({ error, attemptNumber, retriesConsumed }) => {
            if (stopped.signal.aborted) return;
            const retryInMs = Math.min(minMs * 2 ** retriesConsumed, maxMs);
            notice('connect-failed', { attempt: attemptNumber, retryInMs, error: error.message });
          },
        });
        if (stopped.signal.aborted) {
          close(connection);
          return;
        }
        current = connection;
        const connectedAt = performance.now();
        notice('connected', { reason, resumed: cursor.sinceSeconds() !== undefined });
        subscriber.next({ type: 'relist', reason });

        const ended = await pump(connection.stream, deliver);
        current = undefined;
        close(connection);
        if (stopped.signal.aborted) return;

        const lifetimeMs = Math.round(performance.now() - connectedAt);
        notice('stream-ended', { lifetimeMs, ...(ended === undefined ? {} : { error: ended }) });
        reason = 'reconnected';
        // The first drop reconnects at once (the usual case: an engine restart, where the connect
        // itself then backs off). A stream that keeps dropping right after it opens backs off too, or
        // it would relist in a tight loop.
        quickDrops = lifetimeMs >= maxMs ? 0 : quickDrops + 1;
        if (quickDrops > 1) await sleep(Math.min(minMs * 2 ** (quickDrops - 2), maxMs), stopped.signal);
      }
    };

    run().catch((error: unknown) => {
      if (!stopped.signal.aborted) subscriber.error(error);
    });

    return () => {
      stopped.abort();
      if (current) close(current);
      current = undefined;
    };
  });
}

interface Connection {
  readonly stream: NodeJS.ReadableStream;
  readonly request: AbortController;
}

function close(connection: Connection): void {
  connection.request.abort();
  if (connection.stream instanceof Readable) connection.stream.destroy();
}

/**
 * Reads newline-delimited JSON until the stream ends. Resolves with undefined on a clean end, or the
 * error's message; never rejects, as either way the caller reconnects.
 */
async function pump(
  stream: NodeJS.ReadableStream,
  deliver: (line: string) => void,
): Promise<string | undefined> {
  // A chunk can end inside an event, or inside a multi-byte character of a name.
  const decoder = new StringDecoder('utf8');
  let pending = '';
  try {
    for await (const chunk of stream) {
      pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line !== '') deliver(line);
        newline = pending.indexOf('\n');
      }
      if (pending.length > MAX_LINE_CHARS) return `an event line exceeded ${MAX_LINE_CHARS} characters`;
    }
    return undefined;
  } catch (error: unknown) {
    return error instanceof Error ? error.message : String(error);
  }
}

interface ParsedEvent {
  readonly event: DockerObjectEvent;
  /** The engine's exact stamp; numbers lose the last digits, and resuming needs them. */
  readonly timeNano: bigint;
}

const TYPES: ReadonlySet<string> = new Set(OBSERVED_EVENT_TYPES);

function isObservedType(type: string | undefined): type is ObservedEventType {
  return type !== undefined && TYPES.has(type);
}

/** undefined for a well-formed event of a type not watched; 'invalid' for a line that is not an event. */
function parseEventLine(line: string): ParsedEvent | undefined | 'invalid' {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return 'invalid';
  }
  const type = stringField(raw, 'Type');
  if (!isObservedType(type)) return type === undefined ? 'invalid' : undefined;
  const actor = field(raw, 'Actor');
  const id = stringField(actor, 'ID');
  const action = stringField(raw, 'Action');
  const timeNano = timeNanoOf(line, raw);
  if (id === undefined || action === undefined || timeNano === undefined) return 'invalid';

  const attributes = stringMapField(actor, 'Attributes');
  const name = type === 'volume' ? id : attributes.name;
  const labels =
    type === 'container'
      ? Object.fromEntries(Object.entries(attributes).filter(([key]) => key.includes('.')))
      : undefined;
  const event: DockerObjectEvent = {
    type,
    action,
    id,
    ...(name === undefined ? {} : { name }),
    ...(labels === undefined ? {} : { labels }),
    attributes,
    time: Number(timeNano / 1_000_000n),
  };
  return { event, timeNano };
}

function timeNanoOf(line: string, raw: unknown): bigint | undefined {
  // timeNano is a 19-digit integer: JSON.parse rounds it, so read the digits from the text.
  const exact = /"timeNano"\s*:\s*(\d+)/.exec(line)?.[1];
  if (exact !== undefined) return BigInt(exact);
  const seconds = field(raw, 'time');
  return typeof seconds === 'number' && Number.isInteger(seconds)
    ? BigInt(seconds) * 1_000_000_000n
    : undefined;
}

/**
 * Where to resume, and which events were already delivered near that point. Keeps the identity of
 * every event within RESUME_OVERLAP_NS of the newest one, so the overlap replayed after a reconnect
 * is delivered once.
 */
class ResumeCursor {
  #newest: bigint | undefined;
  /** Insertion order is near time order, so pruning from the front is enough. */
  readonly #recent = new Map<string, bigint>();

  /**
   * The `since` to send, in seconds with a fraction. Undefined before the first event: there is then
   * nothing to resume from, and the relist that follows the reconnect covers the gap.
   */
  sinceSeconds(): number | undefined {
    if (this.#newest === undefined) return undefined;
    const since = this.#newest - RESUME_OVERLAP_NS;
    return Number(since / 1_000_000n) / 1000;
  }

  /** False for an event already delivered. */
  admit({ event, timeNano }: ParsedEvent): boolean {
    const key = `${timeNano}/${event.type}/${event.action}/${event.id}`;
    if (this.#recent.has(key)) return false;
    this.#recent.set(key, timeNano);
    if (this.#newest === undefined || timeNano > this.#newest) this.#newest = timeNano;
    const horizon = this.#newest - RESUME_OVERLAP_NS;
    for (const [oldKey, stamp] of this.#recent) {
      if (stamp >= horizon) break;
      this.#recent.delete(oldKey);
    }
    return true;
  }
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
