import type { FieldIssue } from '../../errors.js';
import { loadManifests } from '../../resources/manifest.js';
import { EXIT, type CliIo } from '../io.js';

export interface ValidateCommandOptions {
  readonly filename: readonly string[];
  readonly recursive?: boolean;
}

/** Offline: reads and validates manifests without Redis or Docker. */
export async function runValidate(io: CliIo, options: ValidateCommandOptions): Promise<number> {
  const set = await loadManifests(options.filename, {
    recursive: options.recursive ?? false,
    stdin: () => io.readStdin(),
  });
  if (set.issues.length > 0) {
    printIssues(io, set.issues);
    return EXIT.failed;
  }
  io.out(`${set.resources.length} resources valid`);
  return EXIT.ok;
}

/** One line per problem: `file:line: field.path: message`. */
export function printIssues(io: CliIo, issues: readonly FieldIssue[]): void {
  for (const issue of issues) {
    const where = issue.location ?? '<input>';
    io.err(issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`);
  }
}
