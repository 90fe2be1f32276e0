import type { DesiredStore } from '../../desired/store.js';
import { NotFoundError } from '../../errors.js';
import { EXIT, type CliIo } from '../io.js';
import { parseKindArgument } from '../kind-arg.js';

export async function runDelete(
  store: DesiredStore,
  io: CliIo,
  options: { readonly kind: string; readonly name: string },
): Promise<number> {
  const kind = parseKindArgument(options.kind);
  const existed = await store.delete(kind, options.name);
  if (!existed) throw new NotFoundError(`${kind}/${options.name}`);
  io.out(`${kind}/${options.name} deleted`);
  return EXIT.ok;
}
