/**
 * The example deployment (manifests/examples/local) made private to one bench run: every Docker
 * object renamed with a per-run prefix (so a demo's `nginx` or `jupyterhub` is never touched),
 * labelled with the run label, its host-mode ports moved to free ones, and its paths moved under
 * the run's temp dir. The shape is otherwise exactly the example's.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { IMAGE, REPO_ROOT, type RunContext } from './context.js';
import { freePorts } from './util.js';

export const EXAMPLE_DIR = path.join(REPO_ROOT, 'manifests/examples/local');
const DEMO_ROOT = '/tmp/swarmkeeper-demo';
const DOCKER_KINDS = new Set(['Network', 'Volume', 'Config', 'Secret', 'Service', 'Container']);
/** The example's host ports, in the order `ports` gives their replacements. */
const EXAMPLE_PORTS = [18000, 18080, 18081, 18443] as const;

export interface ManifestDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export interface DeploymentOptions {
  /** Docker name prefix, e.g. bk1a2b3c. */
  readonly np: string;
  /** Where the manifests and the demo folders go. */
  readonly dir: string;
  readonly labels: Record<string, string>;
  /** Four free host ports: hub 8000, nginx 80, letsencrypt 80 and 443. */
  readonly ports: readonly number[];
  /** Adds a third service on the network (notebook) and a second network it also uses (spare). */
  readonly extras?: boolean;
  /** HomeFolders quota driver: `xfs` uses the stand-in xfs_quota. Default: the example's (none). */
  readonly quotaDriver?: 'xfs' | 'none';
  /** Users besides the example's alice and bob. */
  readonly extraUsers?: number;
}

export interface Deployment {
  readonly np: string;
  readonly dir: string;
  /** The multi-document manifest file to apply. */
  readonly file: string;
  readonly docs: ManifestDoc[];
  readonly root: string;
  readonly etc: string;
  readonly ports: readonly number[];
  readonly names: {
    readonly network: string;
    readonly spare: string;
    readonly nfsVolume: string;
    readonly nginxVolume: string;
    readonly nginxConf: string;
    readonly hubConf: string;
    readonly secret: string;
    readonly hub: string;
    readonly nginx: string;
    readonly notebook: string;
    readonly container: string;
  };
  readonly users: readonly string[];
}

function renameDeep(value: unknown, rename: (s: string) => string): unknown {
  if (typeof value === 'string') return rename(value);
  if (Array.isArray(value)) return value.map((v) => renameDeep(v, rename));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renameDeep(v, rename)]));
  }
  return value;
}

function replacePorts(value: unknown, map: ReadonlyMap<number, number>): unknown {
  if (Array.isArray(value)) return value.map((v) => replacePorts(v, map));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === 'published' && typeof v === 'number' ? (map.get(v) ?? v) : replacePorts(v, map),
      ]),
    );
  }
  return value;
}

/** Renames the references a Service or Container makes to other resources, and nothing else. */
function renameReferences(spec: Record<string, unknown>, rename: (name: string) => string): void {
  if (Array.isArray(spec.networks)) {
    spec.networks = (spec.networks as unknown[]).map((n) =>
      typeof n === 'string'
        ? rename(n)
        : { ...(n as { name: string }), name: rename((n as { name: string }).name) },
    );
  }
  for (const field of ['mounts', 'configs', 'secrets']) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    for (const item of list as { source?: unknown; type?: unknown }[]) {
      const isVolume = field !== 'mounts' || item.type === undefined || item.type === 'volume';
      if (isVolume && typeof item.source === 'string') item.source = rename(item.source);
    }
  }
}

export async function loadExample(): Promise<{ docs: ManifestDoc[]; files: string[] }> {
  const entries = (await readdir(EXAMPLE_DIR)).sort();
  const docs: ManifestDoc[] = [];
  for (const entry of entries.filter((e) => e.endsWith('.yaml'))) {
    const text = await readFile(path.join(EXAMPLE_DIR, entry), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      const value = doc.toJS() as ManifestDoc | null;
      if (value) docs.push(value);
    }
  }
  return { docs, files: entries.filter((e) => !e.endsWith('.yaml') && e !== 'README.md') };
}

/**
 * The example for one benchmark of this run: a fresh name prefix, its own folder under the run's
 * temp dir (`folder`), four free ports and the run's labels.
 */
export async function deploymentFor(
  ctx: RunContext,
  folder: string,
  options: Pick<DeploymentOptions, 'extras' | 'quotaDriver' | 'extraUsers'> = {},
): Promise<Deployment> {
  const dir = path.join(ctx.tmp, folder);
  await mkdir(dir, { recursive: true });
  return buildDeployment({
    np: ctx.newNamePrefix(),
    dir,
    labels: ctx.labels,
    ports: await freePorts(4),
    ...options,
  });
}

/** A second tag of the bench image, private to the deployment: what an "image changed" drift sets. */
export async function tagOtherImage(ctx: RunContext, deployment: Deployment): Promise<string> {
  const otherImage = `local/busybox:${deployment.np}`;
  await ctx.docker.getImage(IMAGE).tag({ repo: 'local/busybox', tag: deployment.np });
  ctx.onCleanup(`image tag ${otherImage}`, async () => {
    await ctx.docker.getImage(otherImage).remove({ noprune: true });
  });
  return otherImage;
}

export async function buildDeployment(options: DeploymentOptions): Promise<Deployment> {
  const { np, dir, labels } = options;
  const { docs: example, files } = await loadExample();
  const demo = path.join(dir, 'demo');
  const root = path.join(demo, 'nfs');
  const etc = path.join(demo, 'etc-jupyterhub');
  await mkdir(root, { recursive: true });
  await mkdir(etc, { recursive: true });
  for (const file of files) await copyFile(path.join(EXAMPLE_DIR, file), path.join(dir, file));

  const dockerNames = new Set(example.filter((d) => DOCKER_KINDS.has(d.kind)).map((d) => d.metadata.name));
  const portMap = new Map(EXAMPLE_PORTS.map((p, i) => [p, options.ports[i] ?? p]));
  const movePaths = (s: string): string => s.split(DEMO_ROOT).join(demo);

  const docs: ManifestDoc[] = example.map((doc) => {
    const spec = replacePorts(renameDeep(doc.spec, movePaths), portMap) as Record<string, unknown>;
    renameReferences(spec, (name) => (dockerNames.has(name) ? `${np}-${name}` : name));
    const docker = DOCKER_KINDS.has(doc.kind);
    const out: ManifestDoc = {
      apiVersion: doc.apiVersion,
      kind: doc.kind,
      metadata: {
        ...doc.metadata,
        name: docker ? `${np}-${doc.metadata.name}` : doc.metadata.name,
        ...(docker && { labels: { ...doc.metadata.labels, ...labels } }),
      },
      spec,
    };
    if (doc.kind === 'HomeFolders') {
      const volume = spec.volume as { name?: string } | undefined;
      if (volume?.name) volume.name = `${np}-${volume.name}`;
      if (options.quotaDriver === 'xfs') spec.quota = { driver: 'xfs', default: '1Gi' };
    }
    return out;
  });

  const names = {
    network: `${np}-jupyterhub`,
    spare: `${np}-spare`,
    nfsVolume: `${np}-nfsvolume`,
    nginxVolume: `${np}-nginx_volume`,
    nginxConf: `${np}-nginx-conf`,
    hubConf: `${np}-jupyterhub-config`,
    secret: `${np}-oauth-client-secret`,
    hub: `${np}-jupyterhubserver`,
    nginx: `${np}-nginx`,
    notebook: `${np}-notebook`,
    container: `${np}-letsencrypt-nginx`,
  };
  for (const name of Object.values(names)) {
    if (name === names.spare || name === names.notebook) continue;
    if (!docs.some((d) => d.metadata.name === name)) throw new Error(`the example has no ${name}`);
  }

  if (options.extras) {
    docs.push({
      apiVersion: 'swarmkeeper/v1',
      kind: 'Network',
      metadata: { name: names.spare, labels: { ...labels } },
      spec: { driver: 'overlay', attachable: true },
    });
    // A third service on the network (like a user's notebook), also on the spare network.
    docs.push({
      apiVersion: 'swarmkeeper/v1',
      kind: 'Service',
      metadata: { name: names.notebook, labels: { ...labels } },
      spec: {
        image: IMAGE,
        command: ['sleep', 'infinity'],
        networks: [names.network, names.spare],
        replicas: 1,
        endpointMode: 'dnsrr',
        restartPolicy: { condition: 'any', delay: '1s' },
        updateConfig: { parallelism: 1, order: 'stop-first' },
        stopGracePeriod: '1s',
      },
    });
  }
  const users = docs.filter((d) => d.kind === 'User').map((d) => d.metadata.name);
  for (let i = 1; i <= (options.extraUsers ?? 0); i++) {
    const name = userName(i);
    users.push(name);
    docs.push({
      apiVersion: 'swarmkeeper/v1',
      kind: 'User',
      metadata: { name },
      spec: { email: `${name}@example.org` },
    });
  }

  const file = path.join(dir, 'deployment.yaml');
  await writeFile(file, docs.map((d) => stringify(d)).join('---\n'));
  return { np, dir, file, docs, root, etc, ports: options.ports, names, users };
}

export function userName(i: number): string {
  return `u${String(i).padStart(5, '0')}`;
}

/**
 * HomeFolders on `root` (stand-in xfs quota, e-mail files, plain names, no per-user volume) and
 * `count` Users, one multi-document file written with plain templates (10,000 documents).
 */
export async function writeUsersManifest(
  file: string,
  options: { homes: string; root: string; count: number },
): Promise<string[]> {
  const parts: string[] = [
    [
      'apiVersion: swarmkeeper/v1',
      'kind: HomeFolders',
      'metadata:',
      `  name: ${options.homes}`,
      'spec:',
      `  root: ${options.root}`,
      '  naming: plain',
      '  owner: { uid: 1000, gid: 100 }',
      "  mode: '0770'",
      '  emailFile: true',
      '  quota: { driver: xfs, default: 1Gi }',
      '  reclaimPolicy: Retain',
      '',
    ].join('\n'),
  ];
  const users: string[] = [];
  for (let i = 1; i <= options.count; i++) {
    const name = userName(i);
    users.push(name);
    // One user in ten has its own quota, as some would.
    const quota = i % 10 === 0 ? '\n  quota: 2Gi' : '';
    parts.push(
      `apiVersion: swarmkeeper/v1\nkind: User\nmetadata:\n  name: ${name}\nspec:\n  email: ${name}@example.org${quota}\n`,
    );
  }
  await writeFile(file, parts.join('---\n'));
  return users;
}
