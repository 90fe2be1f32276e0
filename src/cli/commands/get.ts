import type { DesiredStore, StoredRecord } from '../../desired/store.js';
import { NotFoundError, UsageError } from '../../errors.js';
import type { Resource } from '../../resources/resource.js';
import {
  describeIssues,
  recordRow,
  renderJson,
  renderTable,
  renderYaml,
  type OutputFormat,
} from '../format.js';
import { EXIT, type CliIo } from '../io.js';
import { parseKindArgument } from '../kind-arg.js';

export interface GetCommandOptions {
  readonly kind: string | undefined;
  readonly name: string | undefined;
  readonly output: OutputFormat;
}

/**
 * Prints desired resources. Invalid records are never hidden: the table shows them with their
 * first problem, and yaml/json output lists each on stderr with every field path, exiting 1.
 */
export async function runGet(store: DesiredStore, io: CliIo, options: GetCommandOptions): Promise<number> {
  if (options.name !== undefined && options.kind === undefined) throw new UsageError('a name needs a kind');
  const kind = options.kind === undefined ? undefined : parseKindArgument(options.kind);

  let records: StoredRecord[];
  if (kind !== undefined && options.name !== undefined) {
    const record = await store.get(kind, options.name);
    if (!record) throw new NotFoundError(`${kind}/${options.name}`);
    records = [record];
  } else {
    records = (await store.list()).filter(
      (r) => kind === undefined || (r.ok ? r.resource.kind : r.kind) === kind,
    );
  }

  if (options.output === 'table') {
    if (records.length === 0) {
      io.err('no resources found');
      return EXIT.ok;
    }
    io.out(renderTable(['KIND', 'NAME', 'VALID', 'SUMMARY'], records.map(recordRow)));
    return records.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
  }

  const valid: Resource[] = [];
  let invalid = 0;
  for (const record of records) {
    if (record.ok) valid.push(record.resource);
    else {
      invalid += 1;
      io.err(describeIssues(record));
    }
  }
  const single = options.name !== undefined;
  if (valid.length > 0 || !single) {
    io.out(options.output === 'yaml' ? renderYaml(valid) : renderJson(valid, single));
  }
  return invalid > 0 ? EXIT.failed : EXIT.ok;
}
