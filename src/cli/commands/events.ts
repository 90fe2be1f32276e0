import type { EventStream, StoredEvent } from '../../desired/events.js';
import { UsageError } from '../../errors.js';
import { EXIT, type CliIo } from '../io.js';
import { parseKindArgument } from '../kind-arg.js';

export const EVENT_OUTPUTS = ['text', 'json'] as const;
export type EventOutput = (typeof EVENT_OUTPUTS)[number];

export interface EventsCommandOptions {
  readonly follow: boolean;
  /** A kind as people write it (`svc`, `services`); resolved here. */
  readonly kind?: string | undefined;
  readonly name?: string | undefined;
  readonly output: EventOutput;
  /** How many of the newest entries to print first. */
  readonly limit: number;
}

/**
 * The newest drifts and actions from `<prefix>:events`, oldest first; with `follow`, then every new
 * one as it arrives until `signal` aborts (Ctrl-C), which is a normal end (exit 0).
 */
export async function runEvents(
  stream: EventStream,
  io: CliIo,
  options: EventsCommandOptions,
  signal: AbortSignal,
): Promise<number> {
  if (!Number.isSafeInteger(options.limit) || options.limit < 0) {
    throw new UsageError(`--limit must be a whole number of at least 0, not ${options.limit}`);
  }
  const kind = options.kind === undefined ? undefined : parseKindArgument(options.kind);
  const filter = {
    ...(kind !== undefined && { kind }),
    ...(options.name !== undefined && { name: options.name }),
  };
  const print = (event: StoredEvent): void =>
    io.out(options.output === 'json' ? JSON.stringify(event) : formatEvent(event));

  // Reading back from the newest ID and following from that same ID leaves no gap and no repeat.
  const newest = await stream.lastId();
  const history =
    newest === undefined ? [] : await stream.range({ count: options.limit, upTo: newest, ...filter });
  for (const event of history) print(event);
  if (!options.follow) {
    if (history.length === 0) io.err('no events');
    return EXIT.ok;
  }
  for await (const event of stream.follow(newest ?? '0-0', signal)) {
    if (filter.kind !== undefined && event.kind !== filter.kind) continue;
    if (filter.name !== undefined && event.name !== filter.name) continue;
    print(event);
  }
  return EXIT.ok;
}

/**
 * One compact line, local time of day first:
 *
 *   07:31:02 Service/nginx drift spec.replicas 3→1 → update
 *   07:31:02 Service/nginx updated 4ms
 *   07:31:09 WARN Service/hub reconcile failed 12ms: the engine refused the request
 */
export function formatEvent(event: StoredEvent): string {
  const parts = [clock(event.ts)];
  if (event.level !== 'info') parts.push(event.level.toUpperCase());
  parts.push(`${event.kind}/${event.name}`);
  if (event.msg === 'drift detected') {
    const drift = (event.drift ?? []).map(
      (d) => `${d.path === '' ? '' : `${d.path} `}${value(d.actual)}→${value(d.desired)}`,
    );
    parts.push('drift', drift.join(', ') || '?');
    if (event.action && event.action.length > 0) parts.push('→', event.action.join(', '));
  } else {
    parts.push(
      event.verb === undefined || event.verb === event.msg ? event.msg : `${event.msg} (${event.verb})`,
    );
    if (event.durationMs !== undefined) parts.push(`${Math.round(event.durationMs)}ms`);
  }
  const line = parts.join(' ');
  return event.message === undefined ? line : `${line}: ${event.message}`;
}

function clock(ts: string): string {
  const at = new Date(ts);
  if (Number.isNaN(at.getTime())) return ts;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
}

const MAX_VALUE_CHARS = 40;

/** A drift value in a few characters: scalars as they are, structures as cut JSON, absence as `-`. */
function value(v: unknown): string {
  if (v === undefined || v === null) return '-';
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length <= MAX_VALUE_CHARS ? text : `${text.slice(0, MAX_VALUE_CHARS - 1)}…`;
}
