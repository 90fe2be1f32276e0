/**
 * Named fault-injection points, for chaos tests (network recreate steps are NETWORK_RECREATE_FAULTS,
 * beside them). A FaultInjector is called with the name when a procedure reaches the point, and
 * throwing there aborts it; `SWARMKEEPER_FAULT_KILL_AT=<name>` makes `swarmkeeper run` kill itself
 * with SIGKILL there. Constants only, so src/homes may import it.
 */
export const FAULT_POINTS = {
  /** Right before and after the engine call of any service update (scale, image, env, ...). */
  serviceUpdateBefore: 'service-update:before',
  serviceUpdateAfter: 'service-update:after',
  /** A service update that moves a service to a new config or secret version (a rotation). */
  configRotationBeforeServiceUpdate: 'config-rotation:before-service-update',
  configRotationAfterServiceUpdate: 'config-rotation:after-service-update',
  /** Archiving a deleted User's folder: before anything moves, and between the folder and its e-mail file. */
  homeArchiveBeforeRename: 'home-archive:before-rename',
  homeArchiveAfterFolderRename: 'home-archive:after-folder-rename',
} as const;
