import { UsageError } from '../errors.js';
import { KINDS, type Kind } from '../resources/kinds/index.js';

const SHORT_NAMES: Record<string, Kind> = {
  net: 'Network',
  vol: 'Volume',
  cm: 'Config',
  svc: 'Service',
  ctr: 'Container',
  homes: 'HomeFolders',
};

/** Resolves `service`, `Services`, `svc` and the like to a kind, as kubectl accepts resource names loosely. */
export function parseKindArgument(text: string): Kind {
  const lower = text.toLowerCase();
  const short = SHORT_NAMES[lower];
  if (short) return short;
  for (const kind of KINDS) {
    const name = kind.toLowerCase();
    if (lower === name || lower === `${name}s` || (name.endsWith('s') && lower === name)) return kind;
  }
  throw new UsageError(`unknown kind "${text}"; expected one of ${KINDS.join(', ')}`);
}
