/**
 * What a plan asks the executor to do for one key. One discriminated union (`type`), with `kind`
 * on the actions that carry a body, so an executor can switch on both and get the body typed.
 */
import type {
  ConfigSpec,
  NetworkCreateOptions,
  SecretSpec,
  ServiceSpec,
  VolumeCreateOptions,
} from 'dockerode';
import type { DriftEntry } from '../desired/store.js';
import type { ContainerBlueprint } from './container.js';
import type { DependencyRef } from './context.js';

/** Create the object from `body`. */
export interface CreateAction<K extends string, B> {
  readonly type: 'create';
  readonly kind: K;
  readonly body: B;
}

/**
 * Update the object in place. `version` is the index read with the observed object: the engine
 * refuses an update out of sequence, and the caller then re-reads and plans again.
 */
export interface UpdateAction<K extends string, B> {
  readonly type: 'update';
  readonly kind: K;
  readonly id: string;
  readonly version: number;
  readonly body: B;
  /** Only labels change: on a service this restarts no task. */
  readonly labelsOnly: boolean;
  readonly drift: readonly DriftEntry[];
}

/** Remove the object and create it from `body`: the drift is in something the engine cannot change. */
export interface RecreateAction<K extends string, B> {
  readonly type: 'recreate';
  readonly kind: K;
  readonly id: string;
  readonly reason: string;
  readonly body: B;
  readonly drift: readonly DriftEntry[];
  /** True when removing the object loses data that lives only in it (a plain local volume). */
  readonly dataLoss?: boolean;
}

/**
 * Nothing to do. `drift` lists differences left alone on purpose, such as labels of a network,
 * which Docker cannot change, so that status can still show them.
 */
export interface NoneAction {
  readonly type: 'none';
  readonly drift: readonly DriftEntry[];
}

/** The object exists but belongs to someone else and the resource does not ask to adopt it. */
export interface ConflictAction {
  readonly type: 'conflict';
  readonly reason: string;
}

/** Objects this one refers to do not exist yet; plan again once they do. */
export interface WaitAction {
  readonly type: 'wait';
  readonly missing: readonly DependencyRef[];
}

export interface StartAction {
  readonly type: 'start';
  readonly id: string;
}

export interface StopAction {
  readonly type: 'stop';
  readonly id: string;
}

/**
 * Remove an older version of a config or secret. The engine refuses while a service still
 * mounts it; the executor should treat that refusal as "not yet" and retry after the services move.
 */
export interface PruneAction {
  readonly type: 'prune';
  readonly id: string;
  readonly name: string;
}

/** Configs and secrets change labels only; the engine rejects an update that carries Data. */
export interface PayloadLabelsUpdate {
  readonly Name: string;
  readonly Labels: Record<string, string>;
}

export type ServiceAction =
  | CreateAction<'Service', ServiceSpec>
  | UpdateAction<'Service', ServiceSpec>
  | RecreateAction<'Service', ServiceSpec>
  | NoneAction
  | ConflictAction
  | WaitAction;

export type NetworkAction =
  | CreateAction<'Network', NetworkCreateOptions>
  | RecreateAction<'Network', NetworkCreateOptions>
  | NoneAction
  | ConflictAction;

export type VolumeAction =
  | CreateAction<'Volume', VolumeCreateOptions>
  | RecreateAction<'Volume', VolumeCreateOptions>
  | NoneAction
  | ConflictAction;

export type ContainerAction =
  | CreateAction<'Container', ContainerBlueprint>
  | RecreateAction<'Container', ContainerBlueprint>
  | StartAction
  | StopAction
  | NoneAction
  | ConflictAction
  | WaitAction;

export type ConfigAction =
  | CreateAction<'Config', ConfigSpec>
  | UpdateAction<'Config', PayloadLabelsUpdate>
  | PruneAction
  | NoneAction
  | ConflictAction;

export type SecretAction =
  | CreateAction<'Secret', SecretSpec & { Name: string }>
  | UpdateAction<'Secret', PayloadLabelsUpdate>
  | PruneAction
  | NoneAction
  | ConflictAction;

export type Action =
  ServiceAction | NetworkAction | VolumeAction | ContainerAction | ConfigAction | SecretAction;

export type ActionType = Action['type'];

/** True when carrying out `actions` would change nothing: the key is in sync. */
export function isInSync(actions: readonly Action[]): boolean {
  return actions.every((action) => action.type === 'none');
}
