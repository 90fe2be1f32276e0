/** What the actuator reports back: one ActionReport per action, one ActuationStep per object touched. */
import type { Kind } from '../resources/kinds/index.js';

/** The kinds that are Docker objects (HomeFolders and User are not). */
export type DockerKind = Extract<Kind, 'Service' | 'Network' | 'Volume' | 'Config' | 'Secret' | 'Container'>;

export type ActionVerb = 'created' | 'updated' | 'recreated' | 'started' | 'stopped' | 'removed' | 'pruned';

/** Values only, so the controller can put `detail` straight into a log line's fields. */
export type ReportDetail = Readonly<Record<string, string | number | boolean>>;

export interface ActionReport {
  readonly verb: ActionVerb;
  readonly kind: DockerKind;
  /** The Docker object's name (a realised config's or secret's `<name>-<hash8>`). */
  readonly name: string;
  /** The ID of the object now in place (the new one after a recreate); absent for removals. */
  readonly id?: string;
  readonly durationMs: number;
  readonly detail?: ReportDetail;
}

/** How a step of the network recreate went for its target. */
export type StepResult =
  /** Done now. */
  | 'done'
  /** Nothing to do: already in the wanted state (a resumed recreate finds earlier work done). */
  | 'skipped'
  /** The target no longer exists: a user's service removed meanwhile. */
  | 'gone';

/**
 * One step of a network recreate. Every service and container detached or reattached gets its own
 * event, managed or not, so the controller can log each object it touched on someone's behalf.
 */
export interface ActuationStep {
  /**
   * `journal`, `detach-service`, `detach-container`, `drain`, `remove-network`, `create-network`,
   * `reattach-service`, `reattach-container`, `journal-cleared`.
   */
  readonly step: string;
  /** The network being recreated. */
  readonly network: string;
  /** The service or container the step acted on. */
  readonly target?: string;
  readonly targetKind?: 'Service' | 'Container';
  /** Whether `target` carries `io.swarmkeeper.managed=true`; false for the hub's notebook services. */
  readonly managed?: boolean;
  readonly result: StepResult;
  readonly durationMs: number;
  readonly detail?: ReportDetail;
}

export type StepListener = (event: ActuationStep) => void;

/** Called between steps with the name of the point reached; throwing there aborts the procedure (tests). */
export type FaultInjector = (step: string) => void;
