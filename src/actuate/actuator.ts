/**
 * Carries out planned actions against the Docker engine. The plan (src/reconcile) decides what to
 * do; this module does it, adds the owner label to everything it creates, refuses to remove what
 * it does not own, and reports what it did. It logs nothing: the controller logs the reports.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NetworkCreateOptions, ServiceSpec, VolumeCreateOptions } from 'dockerode';
import type { NetworkRecreateJournal } from '../desired/journal.js';
import { ConfigError, DockerRequestError, ERROR_CODES, NotOwnedError } from '../errors.js';
import { DockerCallCounter } from '../observed/call-counter.js';
import type { Docker } from '../observed/docker-client.js';
import { DockerObservedReader, type ObservedReader } from '../observed/reader.js';
import type {
  Action,
  ConflictAction,
  ContainerBlueprint,
  NoneAction,
  PayloadLabelsUpdate,
  WaitAction,
} from '../reconcile/index.js';
import { LABELS } from '../resources/metadata.js';
import { hasDockerCode, toDockerError } from './docker-errors.js';
import { FAULT_POINTS } from './faults.js';
import { Engine, type PayloadKind } from './engine.js';
import { NetworkRecreator, type NetworkRecreateResult } from './network-recreate.js';
import type {
  ActionReport,
  ActionVerb,
  DockerKind,
  FaultInjector,
  ReportDetail,
  StepListener,
} from './types.js';

/** The actions that do something; `none`, `conflict` and `wait` are the controller's to handle. */
export type ExecutableAction = Exclude<Action, NoneAction | ConflictAction | WaitAction>;

export function isExecutable(action: Action): action is ExecutableAction {
  return action.type !== 'none' && action.type !== 'conflict' && action.type !== 'wait';
}

/**
 * The resource an action was planned for. `start`, `stop` and `prune` actions carry only an ID:
 * with the subject the actuator knows the kind (config or secret) and the name without asking.
 */
export interface ActionSubject {
  readonly kind: DockerKind;
  readonly name: string;
}

/** Carries out plans. Every method throws a SwarmkeeperError (mostly DockerRequestError) on failure. */
export interface Actuator {
  execute(action: ExecutableAction, subject?: ActionSubject): Promise<ActionReport>;
  /**
   * Removes what realises a deleted resource: the service, network, volume or container of that
   * name, or every version of a config or secret (`io.swarmkeeper.resource=<name>`). Refuses
   * (NotOwnedError) anything without the managed label and this actuator's owner; refuses
   * (SK_DOCKER_IN_USE) a network with anything attached and a volume a container uses. An object
   * already gone counts as removed.
   */
  remove(kind: DockerKind, name: string): Promise<ActionReport>;
  /** Finishes an interrupted recreate of network `name`; undefined when none is journalled. */
  resumeNetworkRecreate(name: string): Promise<ActionReport | undefined>;
  /** Networks with an interrupted recreate: resume each at startup. */
  pendingNetworkRecreates(): Promise<string[]>;
}

export interface DockerActuatorOptions {
  readonly docker: Docker;
  /** Reads objects back before removing them; default a DockerObservedReader on `docker`. */
  readonly reader?: ObservedReader;
  /** Where API calls are counted; shared with the reader this actuator builds itself. */
  readonly counter?: DockerCallCounter;
  /**
   * The deployment's key prefix. Written as `io.swarmkeeper.owner` on everything created, and
   * required on everything removed.
   */
  readonly owner: string;
  /**
   * Where network recreates are written down. Absent (the per-node volume check, which has no
   * Redis and never touches networks), a network recreate is refused.
   */
  readonly journal?: NetworkRecreateJournal;
  /** Tests: called at named points of multi-step procedures; throwing there aborts them. */
  readonly faultInjector?: FaultInjector;
  /** One event per step of a network recreate, per service or container touched. */
  readonly onStep?: StepListener;
  /** Each API call is abandoned after this long (default 60 s). */
  readonly requestTimeoutMs?: number;
  /** How long a network recreate waits for endpoints to leave the old network (default 30 s). */
  readonly drainTimeoutMs?: number;
  /** Polling interval while waiting on the engine (default 100 ms). */
  readonly pollIntervalMs?: number;
  /** Seconds a container gets to stop before it is killed; default the container's own (10 s). */
  readonly containerStopTimeoutSeconds?: number;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
const DEFAULT_POLL_INTERVAL_MS = 100;
/** How long a recreate retries a create whose name the engine still holds for the removed object. */
const NAME_RELEASE_TIMEOUT_MS = 10_000;

export class DockerActuator implements Actuator {
  readonly counter: DockerCallCounter;
  readonly #engine: Engine;
  readonly #reader: ObservedReader;
  readonly #owner: string;
  readonly #journal: NetworkRecreateJournal | undefined;
  readonly #networks: NetworkRecreator | undefined;
  readonly #pollMs: number;
  readonly #stopTimeout: number | undefined;
  readonly #fault: FaultInjector | undefined;

  constructor(options: DockerActuatorOptions) {
    if (options.owner === '') throw new TypeError('DockerActuator needs a non-empty owner');
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.counter = options.counter ?? new DockerCallCounter();
    this.#engine = new Engine(options.docker, this.counter, timeoutMs);
    this.#reader =
      options.reader ??
      new DockerObservedReader(options.docker, { counter: this.counter, requestTimeoutMs: timeoutMs });
    this.#owner = options.owner;
    this.#journal = options.journal;
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#stopTimeout = options.containerStopTimeoutSeconds;
    this.#fault = options.faultInjector;
    this.#networks =
      options.journal &&
      new NetworkRecreator({
        engine: this.#engine,
        journal: options.journal,
        faultInjector: options.faultInjector,
        onStep: options.onStep,
        drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
        pollIntervalMs: this.#pollMs,
      });
  }

  async execute(action: ExecutableAction, subject?: ActionSubject): Promise<ActionReport> {
    const started = Date.now();
    const done = (
      verb: ActionVerb,
      kind: DockerKind,
      name: string,
      id?: string,
      detail?: ReportDetail,
    ): ActionReport => report(verb, kind, name, started, id, detail);

    switch (action.type) {
      case 'create':
        switch (action.kind) {
          case 'Service': {
            const id = await this.#engine.createService(this.#ownService(action.body));
            return done('created', 'Service', action.body.Name ?? id, id);
          }
          case 'Network': {
            const resumed = await this.#resume(action.body.Name, started);
            if (resumed !== undefined) return resumed;
            const id = await this.#engine.createNetwork(this.#ownNetwork(action.body));
            return done('created', 'Network', action.body.Name, id);
          }
          case 'Volume': {
            const name = await this.#createVolume(action.body);
            return done('created', 'Volume', name, name);
          }
          case 'Config':
          case 'Secret': {
            const body = { ...action.body, Labels: this.#own(action.body.Labels) };
            const id =
              action.kind === 'Config'
                ? await this.#engine.createConfig(body)
                : await this.#engine.createSecret(body);
            return done('created', action.kind, action.body.Name, id);
          }
          case 'Container': {
            const { id, name } = await this.#createContainer(action.body);
            return done('created', 'Container', name, id);
          }
        }
        break;
      case 'update':
        switch (action.kind) {
          case 'Service': {
            const name = action.body.Name ?? action.id;
            const rotation = action.drift.some((d) => d.path === 'spec.configs' || d.path === 'spec.secrets');
            if (rotation) this.#fault?.(FAULT_POINTS.configRotationBeforeServiceUpdate);
            this.#fault?.(FAULT_POINTS.serviceUpdateBefore);
            await this.#engine.updateService(action.id, action.version, this.#ownService(action.body), name);
            this.#fault?.(FAULT_POINTS.serviceUpdateAfter);
            if (rotation) this.#fault?.(FAULT_POINTS.configRotationAfterServiceUpdate);
            return done('updated', 'Service', name, action.id, { labelsOnly: action.labelsOnly });
          }
          case 'Config':
          case 'Secret': {
            await this.#updatePayloadLabels(action.kind, action.id, action.version, action.body);
            return done('updated', action.kind, action.body.Name, action.id, { labelsOnly: true });
          }
        }
        break;
      case 'recreate':
        switch (action.kind) {
          case 'Service': {
            const id = await this.#recreateService(action.id, action.body);
            return done('recreated', 'Service', action.body.Name ?? id, id, { oldId: action.id });
          }
          case 'Network': {
            const resumed = await this.#resume(action.body.Name, started);
            if (resumed !== undefined) return resumed;
            if (!this.#networks)
              throw new ConfigError(
                'this actuator has no network-recreate journal; it cannot recreate networks',
              );
            const result = await this.#networks.recreate(action.id, this.#ownNetwork(action.body));
            return networkReport(result, started);
          }
          case 'Volume': {
            const name = await this.#recreateVolume(action.id, action.body);
            return done('recreated', 'Volume', name, name, { dataLoss: action.dataLoss === true });
          }
          case 'Container': {
            const { id, name } = await this.#recreateContainer(action.id, action.body);
            return done('recreated', 'Container', name, id, { oldId: action.id });
          }
        }
        break;
      case 'start':
      case 'stop': {
        const name = subject?.name ?? (await this.#containerName(action.id));
        if (action.type === 'start') await this.#engine.startContainer(action.id, name);
        else await this.#engine.stopContainer(action.id, name, this.#stopTimeout);
        return done(action.type === 'start' ? 'started' : 'stopped', 'Container', name, action.id);
      }
      case 'prune': {
        const hint = subject?.kind === 'Config' || subject?.kind === 'Secret' ? subject.kind : undefined;
        const kind = await this.#prune(action.id, action.name, hint);
        return done('pruned', kind ?? hint ?? 'Config', action.name, action.id, {
          absent: kind === undefined,
        });
      }
    }
    // Unreachable while ExecutableAction and the switches above agree; tsc checks the switches.
    throw new TypeError(`unsupported action ${JSON.stringify(action)}`);
  }

  async remove(kind: DockerKind, name: string): Promise<ActionReport> {
    const started = Date.now();
    const removed = (id?: string, detail?: ReportDetail): ActionReport =>
      report('removed', kind, name, started, id, detail);
    const absent = (): ActionReport => removed(undefined, { absent: true });

    switch (kind) {
      case 'Service': {
        const service = await this.#read(`inspect service ${name}`, (r) => r.inspectService(name));
        if (service === undefined) return absent();
        this.#assertOwned(`Service ${name}`, service.labels);
        await this.#ignoreMissing(this.#engine.removeService(service.id, name));
        return removed(service.id);
      }
      case 'Network': {
        // A recreate cut short leaves users' services detached: put them back before deciding.
        await this.#resume(name, started);
        const network = await this.#read(`inspect network ${name}`, (r) => r.inspectNetwork(name));
        if (network === undefined) return absent();
        this.#assertOwned(`Network ${name}`, network.Labels);
        const users = [
          ...network.attachedServices.map((s) => `service ${s}`),
          ...network.attachedContainers.map((c) => `container ${c.name || c.id}`),
        ];
        if (users.length > 0) {
          throw new DockerRequestError(ERROR_CODES.DOCKER_IN_USE, `remove network ${name}`, {
            engineMessage: `still attached: ${users.join(', ')}`,
          });
        }
        await this.#ignoreMissing(this.#engine.removeNetwork(network.Id, name));
        return removed(network.Id);
      }
      case 'Volume': {
        const volume = await this.#read(`inspect volume ${name}`, (r) => r.inspectVolume(name));
        if (volume === undefined) return absent();
        this.#assertOwned(`Volume ${name}`, volume.Labels);
        if (volume.usedBy.length > 0)
          throw volumeInUse(
            name,
            volume.usedBy.map((u) => u.containerName),
          );
        await this.#ignoreMissing(this.#engine.removeVolume(name));
        return removed(name);
      }
      case 'Config':
      case 'Secret': {
        const count = await this.#removePayloads(kind, name);
        return removed(undefined, { versions: count });
      }
      case 'Container': {
        const container = await this.#read(`inspect container ${name}`, (r) => r.inspectContainer(name));
        if (container === undefined) return absent();
        this.#assertOwned(`Container ${name}`, container.Config.Labels);
        await this.#stopAndRemoveContainer(container.Id, name);
        return removed(container.Id);
      }
    }
  }

  async resumeNetworkRecreate(name: string): Promise<ActionReport | undefined> {
    return this.#resume(name, Date.now());
  }

  async pendingNetworkRecreates(): Promise<string[]> {
    return this.#journal?.list() ?? [];
  }

  // Owner labels

  #own(labels: Readonly<Record<string, string>> | undefined): Record<string, string> {
    return { ...labels, [LABELS.owner]: this.#owner };
  }

  /** ServiceSpec.Labels only: a ContainerSpec label change would restart every task. */
  #ownService(spec: ServiceSpec): ServiceSpec {
    return { ...spec, Labels: this.#own(spec.Labels) };
  }

  #ownNetwork(body: NetworkCreateOptions): NetworkCreateOptions {
    return { ...body, Labels: this.#own(body.Labels) };
  }

  #assertOwned(subject: string, labels: Readonly<Record<string, string>> | null | undefined): void {
    if (labels?.[LABELS.managed] !== 'true' || labels[LABELS.owner] !== this.#owner) {
      throw new NotOwnedError(subject, this.#owner);
    }
  }

  // Per kind

  async #resume(name: string, started: number): Promise<ActionReport | undefined> {
    const result = await this.#networks?.resume(name);
    return result === undefined ? undefined : networkReport(result, started);
  }

  async #recreateService(id: string, body: ServiceSpec): Promise<string> {
    await this.#ignoreMissing(this.#engine.removeService(id, body.Name ?? id));
    return this.#retryWhileNameHeld(() => this.#engine.createService(this.#ownService(body)));
  }

  /**
   * The engine answers a volume create for a name that exists with the existing volume, not an
   * error: read it back, and call it a conflict unless it carries exactly the labels sent.
   */
  async #createVolume(body: VolumeCreateOptions): Promise<string> {
    const name = body.Name;
    if (name === undefined) {
      throw new DockerRequestError(ERROR_CODES.DOCKER_REJECTED, 'create volume', {
        engineMessage: 'the create options name no volume',
      });
    }
    const labels = this.#own(body.Labels);
    await this.#engine.createVolume({ ...body, Labels: labels });
    const created = await this.#engine.inspectVolume(name);
    const same = Object.entries(labels).every(([key, value]) => created.Labels?.[key] === value);
    if (!same) {
      throw new DockerRequestError(ERROR_CODES.DOCKER_CONFLICT, `create volume ${name}`, {
        engineMessage: 'a volume of that name already exists with other labels',
      });
    }
    return name;
  }

  async #recreateVolume(name: string, body: VolumeCreateOptions): Promise<string> {
    const users = await this.#engine.containersUsingVolume(name);
    if (users.length > 0) {
      throw volumeInUse(
        name,
        users.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')),
      );
    }
    await this.#ignoreMissing(this.#engine.removeVolume(name));
    return this.#createVolume({ ...body, Name: body.Name ?? name });
  }

  async #createContainer(blueprint: ContainerBlueprint): Promise<{ id: string; name: string }> {
    const create = { ...blueprint.create, Labels: this.#own(blueprint.create.Labels) };
    const id = await this.#engine.createContainer(create);
    const name = create.name ?? id;
    // The engine (API 1.41) takes one endpoint at create; the others are connected before start.
    for (const link of blueprint.connect) {
      await this.#engine.connectNetwork(
        link.network,
        id,
        link.aliases === undefined ? {} : { aliases: link.aliases },
        `container ${name} to network ${link.network}`,
      );
    }
    if (blueprint.state !== 'stopped') await this.#engine.startContainer(id, name);
    return { id, name };
  }

  async #recreateContainer(id: string, blueprint: ContainerBlueprint): Promise<{ id: string; name: string }> {
    await this.#stopAndRemoveContainer(id, blueprint.create.name ?? id);
    return this.#retryWhileNameHeld(() => this.#createContainer(blueprint));
  }

  async #stopAndRemoveContainer(id: string, name: string): Promise<void> {
    try {
      await this.#engine.stopContainer(id, name, this.#stopTimeout);
      await this.#engine.removeContainer(id, name);
    } catch (error: unknown) {
      if (!hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) throw error;
    }
  }

  async #containerName(id: string): Promise<string> {
    const container = await this.#engine.inspectContainer(id);
    return container.Name.replace(/^\//, '');
  }

  async #updatePayloadLabels(
    kind: PayloadKind,
    id: string,
    version: number,
    body: PayloadLabelsUpdate,
  ): Promise<void> {
    const labelled = { Name: body.Name, Labels: this.#own(body.Labels) };
    await this.#engine.updatePayload(kind, id, version, labelled, body.Name);
  }

  /**
   * Removes an old config or secret version. Its kind is `hint`, else found by asking for a config
   * of that ID first (IDs of configs and secrets never collide). Undefined when it is already gone.
   */
  async #prune(id: string, name: string, hint: PayloadKind | undefined): Promise<PayloadKind | undefined> {
    const kinds: PayloadKind[] = hint === undefined ? ['Config', 'Secret'] : [hint];
    for (const kind of kinds) {
      let labels: Readonly<Record<string, string>> | undefined;
      try {
        labels = (await this.#engine.inspectPayload(kind, id)).Spec?.Labels;
      } catch (error: unknown) {
        if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) continue;
        throw error;
      }
      this.#assertOwned(`${kind} ${name}`, labels);
      await this.#ignoreMissing(this.#engine.removePayload(kind, id, name));
      return kind;
    }
    return undefined;
  }

  /**
   * Every version of a config or secret resource this owner made. Each is read again by ID just
   * before its removal; the first "in use" is thrown after the others were removed.
   */
  async #removePayloads(kind: PayloadKind, resource: string): Promise<number> {
    const listed = await this.#engine.listPayloads(kind, [
      `${LABELS.resource}=${resource}`,
      `${LABELS.owner}=${this.#owner}`,
    ]);
    let removed = 0;
    let inUse: DockerRequestError | undefined;
    for (const item of listed) {
      const name = item.Spec?.Name ?? item.ID;
      try {
        const current = await this.#engine.inspectPayload(kind, item.ID);
        this.#assertOwned(`${kind} ${name}`, current.Spec?.Labels);
        await this.#engine.removePayload(kind, item.ID, name);
        removed++;
      } catch (error: unknown) {
        if (hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) continue;
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_IN_USE)) throw error;
        inUse ??= error;
      }
    }
    if (inUse !== undefined) throw inUse;
    return removed;
  }

  // Helpers

  async #read<T>(operation: string, read: (reader: ObservedReader) => Promise<T>): Promise<T> {
    try {
      return await read(this.#reader);
    } catch (error: unknown) {
      throw toDockerError(error, operation);
    }
  }

  async #ignoreMissing(request: Promise<void>): Promise<void> {
    try {
      await request;
    } catch (error: unknown) {
      if (!hasDockerCode(error, ERROR_CODES.DOCKER_NOT_FOUND)) throw error;
    }
  }

  /** Retries `create` while the engine still holds the name of an object just removed. */
  async #retryWhileNameHeld<T>(create: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + NAME_RELEASE_TIMEOUT_MS;
    for (;;) {
      try {
        return await create();
      } catch (error: unknown) {
        if (!hasDockerCode(error, ERROR_CODES.DOCKER_CONFLICT) || Date.now() >= deadline) throw error;
      }
      await sleep(this.#pollMs);
    }
  }
}

function report(
  verb: ActionVerb,
  kind: DockerKind,
  name: string,
  started: number,
  id: string | undefined,
  detail: ReportDetail | undefined,
): ActionReport {
  return {
    verb,
    kind,
    name,
    ...(id === undefined ? {} : { id }),
    durationMs: Date.now() - started,
    ...(detail === undefined ? {} : { detail }),
  };
}

function networkReport(result: NetworkRecreateResult, started: number): ActionReport {
  return report('recreated', 'Network', result.network, started, result.newId, {
    oldId: result.oldId,
    services: result.services,
    containers: result.containers,
    ...(result.resumedFrom === undefined ? {} : { resumedFrom: result.resumedFrom }),
  });
}

function volumeInUse(name: string, users: readonly string[]): DockerRequestError {
  return new DockerRequestError(ERROR_CODES.DOCKER_IN_USE, `remove volume ${name}`, {
    engineMessage: `used by container ${users.join(', ')}`,
  });
}
