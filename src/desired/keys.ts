/**
 * The one module that spells Redis key names. Nothing else builds a key by hand.
 *
 *   <prefix>:desired:<Kind>:<name>   HASH, one per resource (spec fields + reserved metadata fields)
 *   <prefix>:status:<Kind>:<name>    HASH, written by the controller
 *   <prefix>:changes                 PUBLISH channel; every CLI write announces `Kind/name` here
 *   <prefix>:generation              STRING counter, bumped by every store write (apply, delete)
 *   <prefix>:journal:Network:<name> STRING (JSON), the progress of a network recreate, kept until it completes
 *   <prefix>:journal:archives        HASH, user → JSON: folder archives in progress, kept until each completes
 *   <prefix>:guard                   HASH, the prune guard the controller sets when the desired set collapses
 *   <prefix>:leader                  STRING, the leader lease: the holder's identity, with a PX expiry
 *   <prefix>:quota:<part>            XFS project IDs: projects (HASH name→id), next-id (counter), released (SET)
 *   <prefix>:events                  STREAM, the last ~10,000 drifts and actions the controller logged
 */
import type { Kind } from '../resources/kinds/index.js';
import { isKind } from '../resources/kinds/index.js';

export const DEFAULT_PREFIX = 'swarmkeeper';

export interface ParsedDesiredKey {
  readonly kind: string;
  readonly name: string;
  /** False when the kind part names no known kind: the record is reported, not loaded. */
  readonly knownKind: boolean;
}

export class KeySpace {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {}

  desired(kind: Kind, name: string): string {
    return `${this.prefix}:desired:${kind}:${name}`;
  }

  status(kind: Kind, name: string): string {
    return `${this.prefix}:status:${kind}:${name}`;
  }

  /** SCAN pattern for every desired record, including ones with unknown kinds. */
  desiredPattern(): string {
    return `${escapeGlob(this.prefix)}:desired:*`;
  }

  statusPattern(): string {
    return `${escapeGlob(this.prefix)}:status:*`;
  }

  get changesChannel(): string {
    return `${this.prefix}:changes`;
  }

  /** Counter every store write bumps, so a listing read in several batches can tell it saw one state. */
  get generation(): string {
    return `${this.prefix}:generation`;
  }

  /** Set while removals are held back because the desired set emptied or halved at once. */
  get guard(): string {
    return `${this.prefix}:guard`;
  }

  /** The leader lease: only the replica named here reconciles, until the key expires. */
  get leader(): string {
    return `${this.prefix}:leader`;
  }

  /** The capped stream of drifts and actions (see events.ts), read by `swarmkeeper events` and the dashboard. */
  get events(): string {
    return `${this.prefix}:events`;
  }

  /** The network-recreate journal of `name`: written before the first change, cleared after the last. */
  networkJournal(name: string): string {
    return `${this.prefix}:journal:Network:${name}`;
  }

  /** Folder archives in progress (user → entry): written before the quota is lifted, cleared once the status says Archived. */
  get archiveJournal(): string {
    return `${this.prefix}:journal:archives`;
  }

  /**
   * The XFS project-ID allocator's keys: `projects` (HASH name→id, never shrinks), `next-id` (the
   * last ID handed out) and `released` (SET of names whose quota was lifted; their IDs stay taken).
   */
  quota(part: 'projects' | 'next-id' | 'released'): string {
    return `${this.prefix}:quota:${part}`;
  }

  /** The keyspace-notification channel pattern for desired records on database `db`. */
  keyspacePattern(db: number): string {
    return `__keyspace@${db}__:${escapeGlob(this.prefix)}:desired:*`;
  }

  /** Splits a desired key back into kind and name; undefined for keys outside this prefix. */
  parseDesired(key: string): ParsedDesiredKey | undefined {
    const head = `${this.prefix}:desired:`;
    if (!key.startsWith(head)) return undefined;
    const rest = key.slice(head.length);
    const separator = rest.indexOf(':');
    if (separator <= 0) return undefined;
    const kind = rest.slice(0, separator);
    const name = rest.slice(separator + 1);
    return { kind, name, knownKind: isKind(kind) };
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
