import type { DesiredStore } from '../../desired/store.js';
import { loadManifests } from '../../resources/manifest.js';
import { EXIT, type CliIo } from '../io.js';
import { printIssues } from './validate.js';

export interface ApplyCommandOptions {
  readonly filename: readonly string[];
  readonly recursive?: boolean;
  readonly dryRun?: boolean;
}

/** Validates the whole set first; a single bad document means nothing is written. */
export async function runApply(
  store: DesiredStore,
  io: CliIo,
  options: ApplyCommandOptions,
): Promise<number> {
  const set = await loadManifests(options.filename, {
    recursive: options.recursive ?? false,
    stdin: () => io.readStdin(),
  });
  if (set.issues.length > 0) {
    printIssues(io, set.issues);
    io.err('nothing applied');
    return EXIT.failed;
  }
  if (set.resources.length === 0) {
    io.err('no manifests found');
    return EXIT.failed;
  }
  const results = await store.apply(
    set.resources.map((r) => r.resource),
    { dryRun: options.dryRun ?? false },
  );
  const suffix = options.dryRun ? ' (dry run)' : '';
  for (const result of results) {
    const fields =
      options.dryRun && result.changedFields.length > 0 ? `: ${result.changedFields.join(', ')}` : '';
    io.out(`${result.kind}/${result.name} ${result.action}${suffix}${fields}`);
  }
  return EXIT.ok;
}
