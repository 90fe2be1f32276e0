/** Exported resources as manifest files: one multi-document YAML file per kind, in dependency order. */
import { stringify } from 'yaml';
import type { Kind } from '../resources/kinds/index.js';
import { KINDS } from '../resources/kinds/index.js';
import { toManifest, type Resource } from '../resources/resource.js';

/** The file each kind goes to; the numbers keep `ls` in the order objects must exist. */
export const EXPORT_FILES: Readonly<Record<Kind, string>> = {
  Network: '00-networks.yaml',
  Volume: '10-volumes.yaml',
  Config: '20-configs.yaml',
  Secret: '25-secrets.yaml',
  HomeFolders: '30-homefolders.yaml',
  Service: '40-services.yaml',
  Container: '50-containers.yaml',
  User: '60-users.yaml',
};

/** Documents of one YAML stream, each a manifest `apply` reads back to the same resource. */
export function renderManifests(resources: readonly Resource[]): string {
  return resources.map((r) => stringify(toManifest(r), { lineWidth: 0 })).join('---\n');
}

/** File name → content, for the kinds that have resources, each file opening with `header` as comments. */
export function renderFiles(resources: readonly Resource[], header: readonly string[]): Map<string, string> {
  const files = new Map<string, string>();
  const comment = header.map((line) => `# ${line}\n`).join('');
  for (const kind of KINDS) {
    const ofKind = resources.filter((r) => r.kind === kind);
    if (ofKind.length > 0) files.set(EXPORT_FILES[kind], `${comment}${renderManifests(ofKind)}`);
  }
  return files;
}
