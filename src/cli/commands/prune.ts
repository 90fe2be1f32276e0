import type { DesiredStore } from '../../desired/store.js';
import { EXIT, type CliIo } from '../io.js';

/**
 * Shows the prune guard, and with `confirm` releases it: the controller then accepts the desired
 * set as it is now and removes the objects of resources that are gone.
 */
export async function runPrune(
  store: DesiredStore,
  io: CliIo,
  options: { readonly confirm: boolean },
): Promise<number> {
  const guard = await store.readGuard();
  if (!guard || guard.state === 'confirmed') {
    io.out('no prune guard is held; removals follow the desired store');
    return EXIT.ok;
  }
  io.out(`prune guard held since ${guard.since}: ${guard.reason}`);
  io.out(`desired resources now: ${guard.desiredCount}; before: ${guard.previousCount}`);
  if (!options.confirm) {
    io.err('re-run with --confirm to let the controller remove the objects of deleted resources');
    return EXIT.failed;
  }
  await store.writeGuard({ ...guard, state: 'confirmed' });
  io.out('confirmed: the controller will remove the objects of resources that are no longer desired');
  return EXIT.ok;
}
