/**
 * Recreating a network: Docker cannot change a network in place (moby/moby #27598), and the seed
 * deployment had to remove and recreate `jupyterhub` to make it attachable (a network can also
 * lose `attachable`, moby/moby #27124). Removal needs every service and container off it first,
 * and those include the users' notebook services the hub spawned, which swarmkeeper does not own
 * and must not lose. So:
 *
 *   1. record every attachment (services by spec, plain containers with aliases) in the journal;
 *   2. detach them all and wait for the network's endpoints to drain;
 *   3. remove it;  4. create it from the body;  5. reattach everything as it was;  6. clear.
 *
 * The journal's phase advances after each step, and every step checks the engine before acting,
 * so `resume` can pick up from any phase after a crash, even when the engine is ahead of the
 * journal (a step done but not yet recorded). Services are only ever updated, never removed:
 * updating a service's networks restarts its tasks, which is the unavoidable cost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NetworkAttachmentConfig, NetworkCreateOptions, ServiceSpec } from 'dockerode';
import type {
  JournalContainerAttachment,
  JournalServiceAttachment,
  JsonObject,
  NetworkRecreateEntry,
  NetworkRecreateJournal,
  NetworkRecreatePhase,
} from '../desired/journal.js';
import { ActuationTimeoutError, DockerRequestError, ERROR_CODES } from '../errors.js';
import { field, isRecord, stringField } from '../observed/fields.js';
import { LABELS } from '../resources/metadata.js';
import { hasDockerCode } from './docker-errors.js';
import type { Engine, ServiceInspect } from './engine.js';
import type { ActuationStep, FaultInjector, ReportDetail, StepListener, StepResult } from './types.js';

/** Fault-injection points, in the order the procedure passes them. */
export const NETWORK_RECREATE_FAULTS = {
  afterJournal: 'network-recreate:after-journal',
  afterDetach: 'network-recreate:after-detach',
  afterRemove: 'network-recreate:after-remove',
  afterCreate: 'network-recreate:after-create',
  afterReattachOne: 'network-recreate:after-reattach-one',
  afterReattach: 'network-recreate:after-reattach',
} as const;

/** Swarm sets this label on every task container; those belong to services and follow their spec. */
const TASK_LABEL = 'com.docker.swarm.task.id';
/** Attempts at a service update that keeps meeting "update out of sequence". */
const UPDATE_ATTEMPTS = 5;
/** Rounds of "detach, look again" before giving up on services that keep joining the network. */
const DETACH_ROUNDS = 3;
/** Times a resumed recreate may find the old network still there and go back to remove it. */
const MAX_REGRESSIONS = 2;

export interface NetworkRecreateResult {
  readonly network: string;
  readonly oldId: string;
  readonly newId: string;
  readonly services: number;
  readonly containers: number;
  /** The phase a resumed recreate started from; absent for one run start to finish. */
  readonly resumedFrom?: NetworkRecreatePhase;
}

export interface NetworkRecreatorOptions {
  readonly engine: Engine;
  readonly journal: NetworkRecreateJournal;
  readonly faultInjector?: FaultInjector | undefined;
  readonly onStep?: StepListener | undefined;
  /** How long to wait for endpoints to leave the old network, and for its name to come free. */
  readonly drainTimeoutMs: number;
  readonly pollIntervalMs: number;
}

export class NetworkRecreator {
  readonly #engine: Engine;
  readonly #journal: NetworkRecreateJournal;
  readonly #fault: FaultInjector | undefined;
  readonly #onStep: StepListener | undefined;
  readonly #drainTimeoutMs: number;
  readonly #pollMs: number;

  constructor(options: NetworkRecreatorOptions) {
    this.#engine = options.engine;
    this.#journal = options.journal;
    this.#fault = options.faultInjector;
    this.#onStep = options.onStep;
    this.#drainTimeoutMs = options.drainTimeoutMs;
    this.#pollMs = options.pollIntervalMs;
  }

  /**
   * Recreates network `networkId` (named `body.Name`) from `body`, which must already carry the
   * owner label. Nothing is changed before the journal is written.
   */
  async recreate(networkId: string, body: NetworkCreateOptions): Promise<NetworkRecreateResult> {
    const name = body.Name;
    const started = Date.now();
    const network = await this.#engine.inspectNetwork(networkId);
    const services = findServiceAttachments(await this.#engine.listServices(), network.Id, network.Name);
    const containers = await this.#plainContainers(network.Id, network.Name, localEndpoints(network));
    const now = new Date().toISOString();
    const entry: NetworkRecreateEntry = {
      phase: 'detaching',
      network: name,
      networkId: network.Id,
      body: toJsonObject(body),
      attachments: { services, containers },
      startedAt: now,
      updatedAt: now,
    };
    await this.#journal.save(name, entry);
    this.#emit({
      step: 'journal',
      network: name,
      result: 'done',
      durationMs: Date.now() - started,
      detail: { services: services.length, containers: containers.length, oldId: network.Id },
    });
    this.#fault?.(NETWORK_RECREATE_FAULTS.afterJournal);
    return this.#run(entry, undefined);
  }

  /** Carries an interrupted recreate of `name` to completion; undefined when there is none. */
  async resume(name: string): Promise<NetworkRecreateResult | undefined> {
    const entry = await this.#journal.load(name);
    if (entry === undefined) return undefined;
    return this.#run(entry, entry.phase);
  }

  async #run(
    start: NetworkRecreateEntry,
    resumedFrom: NetworkRecreatePhase | undefined,
  ): Promise<NetworkRecreateResult> {
    let entry = start;
    let regressions = 0;
    for (;;) {
      switch (entry.phase) {
        case 'detaching':
          entry = await this.#advance(await this.#detach(entry), 'detached');
          this.#fault?.(NETWORK_RECREATE_FAULTS.afterDetach);
          break;
        case 'detached':
          entry = await this.#advance(await this.#removeOld(entry), 'removed');
          this.#fault?.(NETWORK_RECREATE_FAULTS.afterRemove);
          break;
        case 'removed': {
          const newId = await this.#createNew(entry);
          if (newId === undefined) {
            // The old network is still there and in use: the removal never happened. Go back.
            if (++regressions > MAX_REGRESSIONS) {
              throw new DockerRequestError(ERROR_CODES.DOCKER_IN_USE, `remove network ${entry.network}`, {
                engineMessage: 'the old network keeps coming back',
              });
            }
            entry = await this.#advance(entry, 'detaching');
            break;
          }
          entry = await this.#advance({ ...entry, newNetworkId: newId }, 'created');
          this.#fault?.(NETWORK_RECREATE_FAULTS.afterCreate);
          break;
        }
        case 'created':
          await this.#reattach(entry);
          entry = await this.#advance(entry, 'reattached');
          this.#fault?.(NETWORK_RECREATE_FAULTS.afterReattach);
          break;
        case 'reattached':
          return this.#finish(entry, resumedFrom);
      }
    }
  }

  async #finish(
    entry: NetworkRecreateEntry,
    resumedFrom: NetworkRecreatePhase | undefined,
  ): Promise<NetworkRecreateResult> {
    const newId = entry.newNetworkId;
    if (newId === undefined) {
      // Only a hand-edited journal gets here: every path to 'reattached' goes through 'created'.
      throw new DockerRequestError(ERROR_CODES.DOCKER_NOT_FOUND, `recreate network ${entry.network}`, {
        engineMessage: 'the journal reached reattached without the new network ID',
      });
    }
    const started = Date.now();
    await this.#journal.clear(entry.network);
    this.#emit({
      step: 'journal-cleared',
      network: entry.network,
      result: 'done',
      durationMs: Date.now() - started,
    });
    return {
      network: entry.network,
      oldId: entry.networkId,
      newId,
      services: entry.attachments.services.length,
      containers: entry.attachments.containers.length,
      ...(resumedFrom === undefined ? {} : { resumedFrom }),
    };
  }

  async #advance(entry: NetworkRecreateEntry, phase: NetworkRecreatePhase): Promise<NetworkRecreateEntry> {
    const next = { ...entry, phase, updatedAt: new Date().toISOString() };
    await this.#journal.save(entry.network, next);
    return next;
  }

  // Step 2: detach, then wait for the endpoints to drain.

  async #detach(start: NetworkRecreateEntry): Promise<NetworkRecreateEntry> {
    let entry = start;
    const names = new Set([entry.networkId, entry.network]);
    for (const service of entry.attachments.services) await this.#detachService(entry, service, names);
    for (const container of entry.attachments.containers) await this.#detachContainer(entry, container);
    // The hub may spawn a notebook service onto the network while this runs: look again, and
    // journal newcomers before touching them, so they are reattached too.
    for (let round = 1; ; round++) {
      const late = await this.#newcomers(entry);
      if (late === undefined) break;
      if (round > DETACH_ROUNDS) {
        throw new DockerRequestError(ERROR_CODES.DOCKER_IN_USE, `detach network ${entry.network}`, {
          engineMessage: 'services and containers keep joining the network',
        });
      }
      entry = late.entry;
      await this.#journal.save(entry.network, entry);
      for (const service of late.services) await this.#detachService(entry, service, names);
      for (const container of late.containers) await this.#detachContainer(entry, container);
    }
    await this.#drain(entry);
    return entry;
  }

  /** Attachments the old network has that the journal lacks, with the journal extended by them. */
  async #newcomers(entry: NetworkRecreateEntry): Promise<
    | {
        entry: NetworkRecreateEntry;
        services: JournalServiceAttachment[];
        containers: JournalContainerAttachment[];
      }
    | undefined
  > {
    const network = await this.#inspectOrUndefined(entry.networkId);
    if (network === undefined) return undefined;
    const known = new Set(entry.attachments.services.map((s) => s.id));
    const services = findServiceAttachments(
      await this.#engine.listServices(),
      entry.networkId,
      entry.network,
    ).filter((s) => !known.has(s.id));
    const knownContainers = new Set(entry.attachments.containers.map((c) => c.id));
    const containers = (
      await this.#plainContainers(network.Id, network.Name, localEndpoints(network))
    ).filter((c) => !knownContainers.has(c.id));
    if (services.length === 0 && containers.length === 0) return undefined;
    return {
      entry: {
        ...entry,
        attachments: {
          services: [...entry.attachments.services, ...services],
          containers: [...entry.attachments.containers, ...containers],
        },
        updatedAt: new Date().toISOString(),
      },
      services,
      containers,
    };
  }

  async #detachService(
    entry: NetworkRecreateEntry,
    attachment: JournalServiceAttachment,
    targets: ReadonlySet<string>,
  ): Promise<void> {
    const started = Date.now();
    const result = await this.#updateService(attachment, `detach from ${entry.network}`, (spec) =>
      withoutNetwork(spec, targets),
    );
    this.#emitTarget(entry, 'detach-service', 'Service', attachment, result, started);
  }

  async #detachContainer(entry: NetworkRecreateEntry, attachment: JournalContainerAttachment): Promise<void> {
    const started = Date.now();
    let result: StepResult = 'done';
    const container = await this.#containerOrUndefined(attachment.id);
    if (container === undefined) result = 'gone';
    else if (container.NetworkSettings.Networks[entry.network]?.NetworkID !== entry.networkId)
      result = 'skipped';
    else {
      try {
        await this.#engine.disconnectNetwork(
          entry.networkId,
          attachment.id,
          `container ${attachment.name} from network ${entry.network}`,
        );
      } catch (error: unknown) {
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) throw error;
        result = 'gone';
      }
    }
    this.#emitTarget(entry, 'detach-container', 'Container', attachment, result, started);
  }

  /**
   * Waits until no task or container endpoint is left on the old network. Swarm marks a network
   * still holding endpoints for deletion and keeps its name taken until they go, so removing
   * before the drain only moves the wait to the create.
   */
  async #drain(entry: NetworkRecreateEntry): Promise<void> {
    const started = Date.now();
    const deadline = started + this.#drainTimeoutMs;
    for (;;) {
      const network = await this.#inspectOrUndefined(entry.networkId);
      const left = network === undefined ? [] : remainingEndpoints(network);
      if (left.length === 0) break;
      if (Date.now() >= deadline) {
        throw new ActuationTimeoutError(
          `drain network ${entry.network}`,
          this.#drainTimeoutMs,
          `still attached: ${left.join(', ')}`,
        );
      }
      await sleep(this.#pollMs);
    }
    this.#emit({ step: 'drain', network: entry.network, result: 'done', durationMs: Date.now() - started });
  }

  // Step 3: remove.

  async #removeOld(start: NetworkRecreateEntry): Promise<NetworkRecreateEntry> {
    let entry = start;
    const started = Date.now();
    const deadline = started + this.#drainTimeoutMs;
    let result: StepResult = 'done';
    for (;;) {
      try {
        await this.#engine.removeNetwork(entry.networkId, entry.network);
        break;
      } catch (error: unknown) {
        if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) {
          result = 'skipped';
          break;
        }
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_IN_USE) || Date.now() >= deadline) throw error;
      }
      // Something joined after the drain: detach it too (journalled first), then try again.
      entry = await this.#detach(entry);
      await sleep(this.#pollMs);
    }
    this.#emit({
      step: 'remove-network',
      network: entry.network,
      result,
      durationMs: Date.now() - started,
      detail: { id: entry.networkId },
    });
    return entry;
  }

  // Step 4: create.

  /** The new network's ID; undefined when the old network turns out to be still there. */
  async #createNew(entry: NetworkRecreateEntry): Promise<string | undefined> {
    const started = Date.now();
    const body = entry.body as unknown as NetworkCreateOptions;
    const deadline = started + this.#drainTimeoutMs;
    let askedAgain = false;
    for (;;) {
      const existing = await this.#inspectOrUndefined(entry.network);
      if (existing?.Id === entry.networkId) {
        // Swarm lists a removed network for a moment longer. Ask for the removal once more, in case
        // it never happened: "in use" means it did not, and the procedure goes back to detaching.
        if (!askedAgain) {
          askedAgain = true;
          try {
            await this.#engine.removeNetwork(entry.networkId, entry.network);
          } catch (error: unknown) {
            if (hasDockerCode(error, ERROR_CODES.DOCKER_IN_USE)) return undefined;
            if (!hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) throw error;
          }
        }
        if (Date.now() >= deadline) {
          throw new ActuationTimeoutError(
            `create network ${entry.network}`,
            this.#drainTimeoutMs,
            `the removed network ${entry.networkId} is still listed`,
          );
        }
        await sleep(this.#pollMs);
        continue;
      }
      if (existing !== undefined) {
        const id = await this.#settleExisting(entry, existing);
        if (id !== undefined) {
          this.#emitCreate(entry, 'skipped', started, id);
          return id;
        }
        continue;
      }
      try {
        const id = await this.#engine.createNetwork(body);
        this.#emitCreate(entry, 'done', started, id);
        return id;
      } catch (error: unknown) {
        // Swarm keeps the old name taken while the old network is pending deletion.
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_CONFLICT) || Date.now() >= deadline) throw error;
      }
      await sleep(this.#pollMs);
    }
  }

  /**
   * Another network than the old one carries the name in phase `removed`. Ours and as the body
   * asks: our create ran but its phase was not recorded, so keep it (its ID). Ours with another
   * spec and nothing on it: remove it (undefined: create again). Anything else belongs to someone
   * else: stop, and keep the journal for the operator.
   */
  async #settleExisting(
    entry: NetworkRecreateEntry,
    existing: Awaited<ReturnType<Engine['inspectNetwork']>>,
  ): Promise<string | undefined> {
    const body = entry.body as unknown as NetworkCreateOptions;
    const owner = body.Labels?.[LABELS.owner];
    const ours =
      existing.Labels?.[LABELS.managed] === 'true' &&
      owner !== undefined &&
      existing.Labels[LABELS.owner] === owner;
    if (ours && matchesBody(existing, body)) return existing.Id;
    if (ours && remainingEndpoints(existing).length === 0) {
      try {
        await this.#engine.removeNetwork(existing.Id, entry.network);
      } catch (error: unknown) {
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) throw error;
      }
      return undefined;
    }
    throw new DockerRequestError(ERROR_CODES.DOCKER_CONFLICT, `create network ${entry.network}`, {
      engineMessage:
        `network ${existing.Id} took the name while it was being recreated` +
        (ours ? ' and has endpoints on it' : ' and is not ours') +
        '; the recreate journal is kept',
    });
  }

  // Step 5: reattach.

  async #reattach(entry: NetworkRecreateEntry): Promise<void> {
    const newId = entry.newNetworkId;
    if (newId === undefined) {
      throw new DockerRequestError(ERROR_CODES.DOCKER_NOT_FOUND, `reattach to network ${entry.network}`, {
        engineMessage: 'the journal has no new network ID',
      });
    }
    let first = true;
    const afterOne = (): void => {
      if (first) this.#fault?.(NETWORK_RECREATE_FAULTS.afterReattachOne);
      first = false;
    };
    for (const attachment of entry.attachments.services) {
      const started = Date.now();
      const result = await this.#updateService(attachment, `reattach to ${entry.network}`, (spec) =>
        withNetwork(spec, attachment, newId, entry.network),
      );
      this.#emitTarget(entry, 'reattach-service', 'Service', attachment, result, started);
      afterOne();
    }
    for (const attachment of entry.attachments.containers) {
      const started = Date.now();
      const result = await this.#reconnect(entry, attachment, newId);
      this.#emitTarget(entry, 'reattach-container', 'Container', attachment, result, started);
      afterOne();
    }
  }

  async #reconnect(
    entry: NetworkRecreateEntry,
    attachment: JournalContainerAttachment,
    newId: string,
  ): Promise<StepResult> {
    const container = await this.#containerOrUndefined(attachment.id);
    if (container === undefined) return 'gone';
    if (container.NetworkSettings.Networks[entry.network]?.NetworkID === newId) return 'skipped';
    try {
      await this.#engine.connectNetwork(
        newId,
        attachment.id,
        { aliases: attachment.aliases },
        `container ${attachment.name} to network ${entry.network}`,
      );
      return 'done';
    } catch (error: unknown) {
      // The container may have gone between inspect and connect; a missing network is a real error.
      if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) {
        const still = await this.#containerOrUndefined(attachment.id);
        if (still === undefined) return 'gone';
      }
      throw error;
    }
  }

  // Shared pieces.

  /**
   * Re-reads the service and sends `change(spec)` with its current version, again after "update
   * out of sequence" (someone else updated it meanwhile). `change` returns undefined when the
   * spec is already as wanted.
   */
  async #updateService(
    attachment: JournalServiceAttachment,
    why: string,
    change: (spec: ServiceSpec) => ServiceSpec | undefined,
  ): Promise<StepResult> {
    for (let attempt = 1; ; attempt++) {
      let current: ServiceInspect;
      try {
        current = await this.#engine.inspectService(attachment.id);
      } catch (error: unknown) {
        if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) return 'gone';
        throw error;
      }
      const next = current.Spec === undefined ? undefined : change(current.Spec);
      if (next === undefined) return 'skipped';
      try {
        await this.#engine.updateService(
          current.ID,
          current.Version?.Index ?? 0,
          next,
          `${attachment.name} (${why})`,
        );
        return 'done';
      } catch (error: unknown) {
        if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) return 'gone';
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_OUT_OF_SEQUENCE) || attempt >= UPDATE_ATTEMPTS)
          throw error;
      }
      await sleep(this.#pollMs);
    }
  }

  /** Non-task containers among `endpoints`, with their aliases on the network. */
  async #plainContainers(
    networkId: string,
    networkName: string,
    endpoints: readonly string[],
  ): Promise<JournalContainerAttachment[]> {
    const found: JournalContainerAttachment[] = [];
    for (const id of endpoints) {
      const container = await this.#containerOrUndefined(id);
      if (container === undefined) continue;
      const labels = container.Config.Labels ?? {};
      if (labels[TASK_LABEL] !== undefined) continue;
      const settings = Object.entries(container.NetworkSettings.Networks).find(
        ([key, value]) => key === networkName || value.NetworkID === networkId,
      )?.[1];
      const shortId = container.Id.slice(0, 12);
      found.push({
        id: container.Id,
        name: container.Name.replace(/^\//, ''),
        managed: labels[LABELS.managed] === 'true',
        aliases: ((settings?.Aliases ?? []) as string[]).filter(
          (alias) => alias !== shortId && alias !== container.Id,
        ),
      });
    }
    return found;
  }

  async #containerOrUndefined(id: string) {
    try {
      return await this.#engine.inspectContainer(id);
    } catch (error: unknown) {
      if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  async #inspectOrUndefined(idOrName: string) {
    try {
      return await this.#engine.inspectNetwork(idOrName);
    } catch (error: unknown) {
      if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  #emitCreate(entry: NetworkRecreateEntry, result: StepResult, started: number, id: string): void {
    this.#emit({
      step: 'create-network',
      network: entry.network,
      result,
      durationMs: Date.now() - started,
      detail: { id },
    });
  }

  #emitTarget(
    entry: NetworkRecreateEntry,
    step: string,
    targetKind: 'Service' | 'Container',
    target: { name: string; managed: boolean },
    result: StepResult,
    started: number,
    detail?: ReportDetail,
  ): void {
    this.#emit({
      step,
      network: entry.network,
      target: target.name,
      targetKind,
      managed: target.managed,
      result,
      durationMs: Date.now() - started,
      ...(detail === undefined ? {} : { detail }),
    });
  }

  #emit(event: ActuationStep): void {
    this.#onStep?.(event);
  }
}

/** Every service whose spec attaches it to the network, by ID or by name, wherever the list is. */
export function findServiceAttachments(
  services: readonly ServiceInspect[],
  networkId: string,
  networkName: string,
): JournalServiceAttachment[] {
  const found: JournalServiceAttachment[] = [];
  for (const service of services) {
    const spec = service.Spec;
    if (spec === undefined) continue;
    const lists: ['TaskTemplate' | 'Spec', readonly NetworkAttachmentConfig[] | undefined][] = [
      ['TaskTemplate', taskNetworks(spec)],
      ['Spec', spec.Networks],
    ];
    for (const [location, list] of lists) {
      (list ?? []).forEach((entry, position) => {
        if (entry.Target !== networkId && entry.Target !== networkName) return;
        found.push({
          id: service.ID,
          name: spec.Name ?? service.ID,
          managed: spec.Labels?.[LABELS.managed] === 'true',
          location,
          position,
          entry: toJsonObject(entry),
        });
      });
    }
  }
  return found;
}

function taskNetworks(spec: ServiceSpec): NetworkAttachmentConfig[] | undefined {
  const template = spec.TaskTemplate;
  return template !== undefined && 'Networks' in template ? template.Networks : undefined;
}

/** The spec without any entry for the network; undefined when it has none. Everything else is kept as read. */
export function withoutNetwork(spec: ServiceSpec, targets: ReadonlySet<string>): ServiceSpec | undefined {
  const next = structuredClone(spec);
  let changed = false;
  const keep = (list: NetworkAttachmentConfig[] | undefined): NetworkAttachmentConfig[] | undefined => {
    if (list === undefined) return undefined;
    const kept = list.filter((entry) => entry.Target === undefined || !targets.has(entry.Target));
    if (kept.length !== list.length) changed = true;
    return kept;
  };
  const template = next.TaskTemplate;
  if (template !== undefined && 'Networks' in template) {
    const kept = keep(template.Networks);
    if (kept !== undefined) template.Networks = kept;
  }
  const top = keep(next.Networks);
  if (top !== undefined) next.Networks = top;
  return changed ? next : undefined;
}

/**
 * The spec with the journalled entry back in its place, pointing at the new network; undefined
 * when the service is already attached to it.
 */
export function withNetwork(
  spec: ServiceSpec,
  attachment: JournalServiceAttachment,
  newId: string,
  networkName: string,
): ServiceSpec | undefined {
  const present = [...(taskNetworks(spec) ?? []), ...(spec.Networks ?? [])].some(
    (entry) => entry.Target === newId || entry.Target === networkName,
  );
  if (present) return undefined;
  const next = structuredClone(spec);
  const entry = { ...(attachment.entry as NetworkAttachmentConfig), Target: newId };
  if (attachment.location === 'Spec') {
    const list = next.Networks ?? [];
    list.splice(Math.min(attachment.position, list.length), 0, entry);
    next.Networks = list;
    return next;
  }
  const template = next.TaskTemplate ?? {};
  const list = 'Networks' in template ? (template.Networks ?? []) : [];
  list.splice(Math.min(attachment.position, list.length), 0, entry);
  next.TaskTemplate = { ...template, Networks: list };
  return next;
}

/** IDs of the containers with an endpoint on the network on this node, without Swarm's load balancer. */
function localEndpoints(network: unknown): string[] {
  const containers = field(network, 'Containers');
  if (!isRecord(containers)) return [];
  return Object.keys(containers).filter((id) => !id.startsWith('lb-'));
}

/**
 * Who still has an endpoint on the network: local containers, and services with tasks on any node
 * (the verbose inspect's Services section, which a manager fills in cluster-wide).
 */
function remainingEndpoints(network: unknown): string[] {
  const containers = field(network, 'Containers');
  const local = isRecord(containers)
    ? Object.entries(containers)
        .filter(([id]) => !id.startsWith('lb-'))
        .map(([id, value]) => stringField(value, 'Name') ?? id)
    : [];
  const services = field(network, 'Services');
  const remote = isRecord(services)
    ? Object.entries(services)
        .filter(([name, value]) => name !== '' && hasTasks(value))
        .map(([name]) => `service ${name}`)
    : [];
  return [...local, ...remote];
}

function hasTasks(service: unknown): boolean {
  const tasks = field(service, 'Tasks');
  return Array.isArray(tasks) && tasks.length > 0;
}

/** Whether an existing network has what the body asks for, in the fields Docker cannot change. */
function matchesBody(
  network: Awaited<ReturnType<Engine['inspectNetwork']>>,
  body: NetworkCreateOptions,
): boolean {
  return (
    network.Driver === (body.Driver ?? 'bridge') &&
    (network.Attachable === true) === (body.Attachable === true) &&
    (network.Internal === true) === (body.Internal === true)
  );
}

function toJsonObject(value: object): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}
