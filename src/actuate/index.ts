/**
 * The actuator: carries out reconcile plans against the Docker engine. Only this module and
 * src/observed talk to dockerode.
 */
export {
  DockerActuator,
  isExecutable,
  type ActionSubject,
  type Actuator,
  type DockerActuatorOptions,
  type ExecutableAction,
} from './actuator.js';
export { hasDockerCode, toDockerError } from './docker-errors.js';
export { NETWORK_RECREATE_FAULTS, type NetworkRecreateResult } from './network-recreate.js';
export { FAULT_POINTS } from './faults.js';
export type {
  ActionReport,
  ActionVerb,
  ActuationStep,
  DockerKind,
  FaultInjector,
  ReportDetail,
  StepListener,
  StepResult,
} from './types.js';
