/**
 * Docker objects as they are → manifests that describe them, for adopting a deployment built by
 * hand. Pure: the caller reads the engine.
 *
 * A manifest holds only what matters, normalised the way the reconciler's diff reads the engine
 * (src/reconcile/normalise.ts, service-diff.ts, container.ts): defaults Swarm or the CLI filled in
 * are left out (restart and update policies, endpoint mode vip, empty Resources, StopGracePeriod
 * 10s), images lose the digest Swarm pinned, env becomes a map, network attachments are by name,
 * configs by the resource that will hold them. So translating a manifest back and diffing it with
 * the object it came from finds no field drift, only the labels adoption adds.
 *
 * Every manifest carries `swarmkeeper/adopt: "true"`. Each translator returns a validated resource
 * or a reason it cannot, plus warnings about settings a manifest cannot express.
 */
import type {
  ObservedConfig,
  ObservedContainerDetail,
  ObservedNetwork,
  ObservedVolume,
  ServiceSpec,
} from '../observed/reader.js';
import {
  DEFAULT_CONTAINER_RESTART,
  DEFAULT_IPAM_DRIVER,
  DEFAULT_NETWORK_DRIVER,
  DEFAULT_PAYLOAD_GID,
  DEFAULT_PAYLOAD_MODE,
  DEFAULT_PAYLOAD_UID,
  DEFAULT_PROTOCOL,
  DEFAULT_REPLICAS,
  DEFAULT_VOLUME_DRIVER,
  ENGINE_NETWORK_OPTIONS,
  SWARM_ENDPOINT_MODE,
  SWARM_PUBLISH_MODE,
  SWARM_RESTART_DEFAULTS,
  SWARM_STOP_GRACE_PERIOD,
  SWARM_UPDATE_DEFAULTS,
} from '../reconcile/defaults.js';
import {
  asArray,
  asNumber,
  asRecord,
  asString,
  float32,
  getIn,
  isRecord,
  nonEmptyString,
  normalMount,
  payloadRefSet,
  positiveNumber,
  sameData,
  stringList,
  stringMap,
  unlessDefault,
  type JsonRecord,
  type NormalMount,
} from '../reconcile/normalise.js';
import { ANNOTATIONS, API_VERSION, RESERVED_LABEL_PREFIX } from '../resources/metadata.js';
import { validateResource, type ResourceOf } from '../resources/resource.js';
import { formatBytes, formatCpus, formatDuration, formatOctalMode } from './units.js';

export type Translation<K extends 'Network' | 'Volume' | 'Config' | 'Service' | 'Container'> =
  | { readonly ok: true; readonly resource: ResourceOf<K>; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** Networks every engine or Swarm makes by itself; never exported. */
export const BUILTIN_NETWORK_NAMES: ReadonlySet<string> = new Set([
  'ingress',
  'bridge',
  'host',
  'none',
  'docker_gwbridge',
]);

const ENCRYPTED_OPTION = 'encrypted';

type Doc = Record<string, unknown>;

/** Drops `undefined` members (and returns undefined for an object left empty), keeping key order. */
function tidy(value: Doc): Doc | undefined {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return entries.length === 0 ? undefined : Object.fromEntries(entries);
}

/** Labels a person set: the controller's own (`io.swarmkeeper.*`) are not theirs to write. */
export function userLabels(labels: unknown): Record<string, string> | undefined {
  const map = stringMap(labels);
  if (map === undefined) return undefined;
  const kept = Object.entries(map).filter(([key]) => !key.startsWith(RESERVED_LABEL_PREFIX));
  return kept.length === 0 ? undefined : Object.fromEntries(kept);
}

function finish<K extends 'Network' | 'Volume' | 'Config' | 'Service' | 'Container'>(
  kind: K,
  name: string,
  labels: Record<string, string> | undefined,
  spec: Doc,
  warnings: readonly string[],
): Translation<K> {
  const result = validateResource({
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name,
      ...(labels !== undefined && { labels }),
      annotations: { [ANNOTATIONS.adopt]: 'true' },
    },
    spec,
  });
  if (!result.ok) {
    return {
      ok: false,
      reason: `cannot be written as a manifest: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    };
  }
  return { ok: true, resource: result.resource as ResourceOf<K>, warnings };
}

/** The image without the `@sha256:` digest Swarm pinned, when a tag says what was asked for. */
export function unpinnedImage(image: string): string {
  const at = image.indexOf('@');
  if (at < 0) return image;
  const named = image.slice(0, at);
  const hasTag = named.lastIndexOf(':') > named.lastIndexOf('/');
  // `name@sha256:…` with no tag: the digest is all that says which image, so it stays.
  return hasTag ? named : image;
}

/** `["A=1", "B=2"]` → `{A: "1", B: "2"}` (the last of a name wins, as in Docker); a list if any entry has no `=`. */
export function envMap(env: readonly string[]): Record<string, string> | string[] | undefined {
  if (env.length === 0) return undefined;
  if (env.some((entry) => !entry.includes('='))) return [...env];
  const map = new Map<string, string>();
  for (const entry of env) {
    const eq = entry.indexOf('=');
    map.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A normalised engine mount (see normalise.ts) as the manifest's `mounts` entry. */
function manifestMount(m: NormalMount): Doc {
  const volume =
    m.type === 'volume' && m.volume !== undefined
      ? tidy({
          noCopy: m.volume.noCopy,
          driver: m.volume.driver,
          driverOpts: m.volume.driverOpts,
          labels: m.volume.labels,
        })
      : undefined;
  const tmpfs =
    m.type === 'tmpfs' && m.tmpfs !== undefined
      ? tidy({
          size: m.tmpfs.sizeBytes === undefined ? undefined : formatBytes(m.tmpfs.sizeBytes),
          mode: m.tmpfs.mode,
        })
      : undefined;
  return (
    tidy({
      type: m.type === 'volume' ? undefined : m.type,
      source: m.source,
      target: m.target,
      readOnly: m.readOnly,
      volume,
      bind: m.type === 'bind' && m.propagation !== undefined ? { propagation: m.propagation } : undefined,
      tmpfs,
    }) ?? {}
  );
}

/** A HealthConfig as the manifest's `healthcheck`, or undefined when it sets nothing. */
function manifestHealthcheck(value: unknown): Doc | undefined {
  const h = asRecord(value);
  if (!h) return undefined;
  const test = stringList(h.Test);
  if (test?.[0] === 'NONE') return { disable: true };
  return tidy({
    // `CMD-SHELL cmd` is how compose and the CLI store a shell command: write it back as the string.
    test: test?.[0] === 'CMD-SHELL' && test.length === 2 ? test[1] : test,
    interval: duration(positiveNumber(h.Interval)),
    timeout: duration(positiveNumber(h.Timeout)),
    retries: positiveNumber(h.Retries),
    startPeriod: duration(positiveNumber(h.StartPeriod)),
  });
}

function duration(nanos: number | undefined): string | undefined {
  return nanos === undefined ? undefined : formatDuration(nanos);
}

function sortedStrings(list: readonly string[] | undefined): string[] | undefined {
  return list === undefined || list.length === 0 ? undefined : [...list];
}

// ---------------------------------------------------------------------------------------------
// Networks, volumes, configs

export function networkManifest(network: ObservedNetwork): Translation<'Network'> {
  if (network.Ingress === true || BUILTIN_NETWORK_NAMES.has(network.Name))
    return { ok: false, reason: 'a network Docker makes by itself' };
  const raw = network as unknown as JsonRecord;
  if (raw.ConfigOnly === true || nonEmptyString(getIn(raw, ['ConfigFrom', 'Network'])) !== undefined)
    return { ok: false, reason: 'a config-only network (or one made from one): not expressible' };
  const options = stringMap(network.Options) ?? {};
  const driverOpts = Object.fromEntries(
    Object.entries(options).filter(([k]) => k !== ENCRYPTED_OPTION && !ENGINE_NETWORK_OPTIONS.has(k)),
  );
  const warnings: string[] = [];
  if (raw.EnableIPv6 === true) warnings.push('IPv6 is enabled on it; a manifest cannot say so');
  const spec = tidy({
    driver: unlessDefault(network.Driver, DEFAULT_NETWORK_DRIVER),
    attachable: network.Attachable === true ? true : undefined,
    internal: network.Internal === true ? true : undefined,
    encrypted: options[ENCRYPTED_OPTION] !== undefined ? true : undefined,
    driverOpts: Object.keys(driverOpts).length > 0 ? driverOpts : undefined,
    // Subnets are left out: Swarm allocates one for every overlay, and an allocated subnet cannot
    // be told from one a person chose. The diff compares IPAM only as far as a manifest states it.
    ipam: tidy({ driver: unlessDefault(nonEmptyString(network.IPAM?.Driver), DEFAULT_IPAM_DRIVER) }),
  });
  return finish('Network', network.Name, userLabels(network.Labels), spec ?? {}, warnings);
}

/** Anonymous volumes (64 hex digits) belong to one container's lifetime; nobody names them in a manifest. */
export function isAnonymousVolume(name: string): boolean {
  return /^[0-9a-f]{64}$/.test(name);
}

export function volumeManifest(volume: Omit<ObservedVolume, 'usedBy'>): Translation<'Volume'> {
  if (isAnonymousVolume(volume.Name)) return { ok: false, reason: 'an anonymous volume' };
  const spec = tidy({
    driver: unlessDefault(volume.Driver, DEFAULT_VOLUME_DRIVER),
    driverOpts: stringMap(volume.Options),
  });
  return finish('Volume', volume.Name, userLabels(volume.Labels), spec ?? {}, []);
}

/** A config with its content inline; the engine returns Data base64-encoded. */
export function configManifest(config: ObservedConfig): Translation<'Config'> {
  const name = config.Spec?.Name;
  if (name === undefined) return { ok: false, reason: 'a config without a name' };
  const bytes = Buffer.from(config.Spec?.Data ?? '', 'base64');
  const data = bytes.toString('utf8');
  if (!Buffer.from(data, 'utf8').equals(bytes))
    return { ok: false, reason: 'its content is not UTF-8 text, which a manifest cannot hold' };
  return finish('Config', name, userLabels(config.Spec?.Labels), { data }, []);
}

// ---------------------------------------------------------------------------------------------
// Services

export interface ServiceExportContext {
  /** Network ID → name, for every network the engine has. */
  readonly networkNames: ReadonlyMap<string, string>;
  /** The Config resource that will hold the config object of this name. */
  readonly configResource: (objectName: string) => string;
  /** The Secret resource that will hold the secret object of this name. */
  readonly secretResource: (objectName: string) => string;
}

const CS = ['TaskTemplate', 'ContainerSpec'];
const TT = ['TaskTemplate'];

/** Members of an update or rollback policy, read exactly as the diff reads them (service-diff.ts). */
function policyManifest(value: unknown): Doc | undefined {
  const policy = asRecord(value);
  if (policy === undefined) return undefined;
  const d = SWARM_UPDATE_DEFAULTS;
  const delay = unlessDefault(positiveNumber(policy.Delay), d.Delay);
  const monitor = unlessDefault(positiveNumber(policy.Monitor), d.Monitor);
  const ratio = unlessDefault(float32(policy.MaxFailureRatio), d.MaxFailureRatio);
  return tidy({
    // A present policy without Parallelism means 0, "all at once" (the engine omits a zero).
    parallelism: unlessDefault(asNumber(policy.Parallelism) ?? 0, d.Parallelism),
    delay: duration(delay),
    failureAction: unlessDefault(nonEmptyString(policy.FailureAction), d.FailureAction),
    monitor: duration(monitor),
    maxFailureRatio: ratio === undefined ? undefined : asNumber(policy.MaxFailureRatio),
    order: unlessDefault(nonEmptyString(policy.Order), d.Order),
  });
}

function payloadRefs(
  value: unknown,
  kind: 'Config' | 'Secret',
  resourceOf: (objectName: string) => string,
  warnings: string[],
): Doc[] | undefined {
  const refs = payloadRefSet(value, kind) ?? [];
  const out = refs.map((ref) => {
    const source = resourceOf(ref.name);
    const defaultFile = kind === 'Secret' ? `/run/secrets/${source}` : `/${source}`;
    if (ref.mode > 0o777)
      warnings.push(
        `${kind.toLowerCase()} ${ref.name} has file mode ${ref.mode.toString(8)}, beyond what a manifest can say`,
      );
    return (
      tidy({
        source,
        target: ref.file === defaultFile ? undefined : ref.file,
        uid: ref.uid === DEFAULT_PAYLOAD_UID ? undefined : ref.uid,
        gid: ref.gid === DEFAULT_PAYLOAD_GID ? undefined : ref.gid,
        mode: ref.mode === DEFAULT_PAYLOAD_MODE ? undefined : formatOctalMode(ref.mode & 0o777),
      }) ?? { source }
    );
  });
  return out.length === 0 ? undefined : out;
}

/** Settings a Service manifest has no field for: kept on the live service while adopted, lost if it is ever recreated. */
function inexpressibleServiceSettings(spec: ServiceSpec): string[] {
  const cs = asRecord(getIn(spec, CS)) ?? {};
  const found: string[] = [];
  const flag = (value: unknown, label: string): void => {
    if (value === true) found.push(label);
  };
  const list = (value: unknown, label: string): void => {
    if (asArray(value).length > 0 || (isRecord(value) && Object.keys(value).length > 0)) found.push(label);
  };
  flag(cs.Init, 'init');
  flag(cs.ReadOnly, 'read-only root filesystem');
  flag(cs.TTY, 'tty');
  flag(cs.OpenStdin, 'open stdin');
  list(cs.Hosts, 'extra hosts');
  list(cs.Groups, 'extra groups');
  list(cs.Sysctls, 'sysctls');
  list(cs.Ulimits, 'ulimits');
  list(cs.Privileges, 'privileges (credential spec, SELinux, seccomp, AppArmor)');
  list(getIn(cs, ['DNSConfig', 'Nameservers']), 'DNS servers');
  list(getIn(cs, ['DNSConfig', 'Search']), 'DNS search domains');
  list(getIn(cs, ['DNSConfig', 'Options']), 'DNS options');
  list(getIn(spec, [...TT, 'Resources', 'Reservations', 'GenericResources']), 'generic resources');
  if (nonEmptyString(getIn(spec, [...TT, 'LogDriver', 'Name'])) !== undefined) found.push('log driver');
  const isolation = nonEmptyString(cs.Isolation);
  if (isolation !== undefined && isolation !== 'default') found.push(`isolation ${isolation}`);
  return found;
}

/**
 * A Service manifest from `Spec` of `docker service inspect`. Fields are read the way
 * service-diff.ts reads them, so `serviceSpecFor(manifest)` diffs clean against `spec`.
 */
export function serviceManifest(spec: ServiceSpec, context: ServiceExportContext): Translation<'Service'> {
  const name = spec.Name;
  if (name === undefined) return { ok: false, reason: 'a service without a name' };
  const mode = asRecord(spec.Mode) ?? {};
  if (mode.ReplicatedJob !== undefined || mode.GlobalJob !== undefined)
    return {
      ok: false,
      reason: 'a job service (replicated-job or global-job), which a manifest cannot express',
    };
  const image = asString(getIn(spec, [...CS, 'Image']));
  if (image === undefined) return { ok: false, reason: 'a service without an image' };
  const warnings: string[] = [];
  const cs = asRecord(getIn(spec, CS)) ?? {};

  const networks = asArray(getIn(spec, [...TT, 'Networks']) ?? getIn(spec, ['Networks'])).flatMap((raw) => {
    const target = asString(asRecord(raw)?.Target);
    if (target === undefined) return [];
    const networkName = context.networkNames.get(target);
    if (networkName === undefined) warnings.push(`network ${target} is attached by an ID no network has`);
    const aliases = stringList(asRecord(raw)?.Aliases);
    const attached = networkName ?? target;
    return [aliases === undefined ? attached : { name: attached, aliases: [...new Set(aliases)].sort() }];
  });
  const ports = asArray(getIn(spec, ['EndpointSpec', 'Ports'])).flatMap((raw) => {
    const port = asRecord(raw);
    const target = asNumber(port?.TargetPort);
    if (!port || target === undefined) return [];
    return [
      tidy({
        target,
        published: positiveNumber(port.PublishedPort),
        protocol: unlessDefault(nonEmptyString(port.Protocol), DEFAULT_PROTOCOL),
        mode: unlessDefault(nonEmptyString(port.PublishMode), SWARM_PUBLISH_MODE),
      }) ?? { target },
    ];
  });
  const mounts = asArray(cs.Mounts).flatMap((raw) => {
    const m = normalMount(raw);
    return m === undefined ? [] : [manifestMount(m)];
  });
  const limits = asRecord(getIn(spec, [...TT, 'Resources', 'Limits']));
  const reservations = asRecord(getIn(spec, [...TT, 'Resources', 'Reservations']));
  const restart = asRecord(getIn(spec, [...TT, 'RestartPolicy']));
  const r = SWARM_RESTART_DEFAULTS;
  const placement = asRecord(getIn(spec, [...TT, 'Placement']));
  const preferences = asArray(placement?.Preferences).flatMap((p) => {
    const spread = nonEmptyString(getIn(p, ['Spread', 'SpreadDescriptor']));
    return spread === undefined ? [] : [{ spread }];
  });
  const global = mode.Global !== undefined;
  const stopGrace = unlessDefault(asNumber(cs.StopGracePeriod), SWARM_STOP_GRACE_PERIOD);
  const cpu = (v: unknown): number | undefined => {
    const n = positiveNumber(v);
    return n === undefined ? undefined : formatCpus(n);
  };
  const memory = (v: unknown): string | number | undefined => {
    const n = positiveNumber(v);
    return n === undefined ? undefined : formatBytes(n);
  };

  const manifest = tidy({
    image: unpinnedImage(image),
    entrypoint: stringList(cs.Command),
    command: stringList(cs.Args),
    workingDir: nonEmptyString(cs.Dir),
    user: nonEmptyString(cs.User),
    hostname: nonEmptyString(cs.Hostname),
    env: envMap(stringList(cs.Env) ?? []),
    containerLabels: stringMap(cs.Labels),
    networks: networks.length > 0 ? networks : undefined,
    ports: ports.length > 0 ? ports : undefined,
    mounts: mounts.length > 0 ? mounts : undefined,
    configs: payloadRefs(cs.Configs, 'Config', context.configResource, warnings),
    secrets: payloadRefs(cs.Secrets, 'Secret', context.secretResource, warnings),
    mode: global ? 'global' : undefined,
    replicas: global ? undefined : (asNumber(getIn(mode, ['Replicated', 'Replicas'])) ?? DEFAULT_REPLICAS),
    placement: tidy({
      constraints: sortedStrings(stringList(placement?.Constraints)),
      preferences: preferences.length > 0 ? preferences : undefined,
      maxReplicas: positiveNumber(placement?.MaxReplicas),
    }),
    resources: tidy({
      limits: tidy({
        cpus: cpu(limits?.NanoCPUs),
        memory: memory(limits?.MemoryBytes),
        pids: positiveNumber(limits?.Pids),
      }),
      reservations: tidy({ cpus: cpu(reservations?.NanoCPUs), memory: memory(reservations?.MemoryBytes) }),
    }),
    restartPolicy: tidy({
      condition: unlessDefault(nonEmptyString(restart?.Condition), r.Condition),
      delay: duration(unlessDefault(asNumber(restart?.Delay), r.Delay)),
      maxAttempts: unlessDefault(asNumber(restart?.MaxAttempts), r.MaxAttempts),
      window: duration(unlessDefault(asNumber(restart?.Window), r.Window)),
    }),
    updateConfig: policyManifest(spec.UpdateConfig),
    rollbackConfig: policyManifest(spec.RollbackConfig),
    healthcheck: manifestHealthcheck(cs.Healthcheck ?? cs.HealthCheck),
    capAdd: stringList(cs.CapabilityAdd),
    capDrop: stringList(cs.CapabilityDrop),
    stopGracePeriod: duration(stopGrace),
    stopSignal: nonEmptyString(cs.StopSignal),
    endpointMode: unlessDefault(nonEmptyString(getIn(spec, ['EndpointSpec', 'Mode'])), SWARM_ENDPOINT_MODE),
  });
  const unsupported = inexpressibleServiceSettings(spec);
  if (unsupported.length > 0)
    warnings.push(
      `sets ${unsupported.join(', ')}, which a manifest cannot express: kept while the service is only updated, lost if it is ever recreated`,
    );
  return finish('Service', name, userLabels(spec.Labels), manifest ?? {}, warnings);
}

// ---------------------------------------------------------------------------------------------
// Containers

/** What the image contributes to a container's config: the engine merges it in at create. */
export interface ImageDefaults {
  readonly Env?: readonly string[] | null | undefined;
  readonly Cmd?: readonly string[] | null | undefined;
  readonly Entrypoint?: readonly string[] | string | null | undefined;
  readonly WorkingDir?: string | null | undefined;
  readonly User?: string | null | undefined;
  readonly Labels?: Readonly<Record<string, string>> | null | undefined;
  readonly Healthcheck?: unknown;
}

/** Task containers of Swarm services carry these; they belong to their service, never exported alone. */
export function isTaskContainer(labels: Readonly<Record<string, string>> | null | undefined): boolean {
  return (
    labels?.['com.docker.swarm.task.id'] !== undefined ||
    labels?.['com.docker.swarm.service.id'] !== undefined
  );
}

/** `-v src:dst[:opts]` binds as mounts, read as container.ts reads them. */
function bindMounts(binds: unknown): Doc[] {
  return (stringList(binds) ?? []).flatMap((bind) => {
    const [source = '', target, opts = ''] = bind.split(':');
    if (target === undefined) return [];
    const flags = opts.split(',');
    const propagation = flags.find((f) => /^r?(private|shared|slave)$/.test(f));
    const m = normalMount({
      Type: source.startsWith('/') ? 'bind' : 'volume',
      Source: source,
      Target: target,
      ReadOnly: flags.includes('ro'),
      ...(propagation !== undefined && { BindOptions: { Propagation: propagation } }),
    });
    return m === undefined ? [] : [manifestMount(m)];
  });
}

function sameList(a: readonly string[] | undefined, b: unknown): boolean {
  const other = typeof b === 'string' ? [b] : (stringList(b) ?? undefined);
  return sameData(a ?? null, other ?? null);
}

function inexpressibleContainerSettings(detail: ObservedContainerDetail): string[] {
  const host: JsonRecord = isRecord(detail.HostConfig) ? detail.HostConfig : {};
  const found: string[] = [];
  if (host.Privileged === true) found.push('privileged');
  if (host.ReadonlyRootfs === true) found.push('read-only root filesystem');
  if (asArray(host.Devices).length > 0) found.push('devices');
  if (asArray(host.ExtraHosts).length > 0) found.push('extra hosts');
  if (asArray(host.Dns).length > 0) found.push('DNS servers');
  if (asArray(host.Links).length > 0) found.push('links');
  if (asArray(host.VolumesFrom).length > 0) found.push('volumes-from');
  if (asArray(host.SecurityOpt).length > 0) found.push('security options');
  if (asArray(host.Ulimits).length > 0) found.push('ulimits');
  if (asArray(host.DeviceRequests).length > 0) found.push('device requests (GPUs)');
  const log = nonEmptyString(getIn(host, ['LogConfig', 'Type']));
  if (log !== undefined && log !== 'json-file') found.push(`log driver ${log}`);
  if (nonEmptyString(host.PidMode) !== undefined) found.push('pid mode');
  if (detail.Config.Tty) found.push('tty');
  return found;
}

/**
 * A Container manifest from `docker container inspect`, with what the image contributes (env,
 * command, labels, health check, ...) taken out, since the engine merges it into the container's
 * config and a manifest that repeated it would pin the image's values forever.
 */
export function containerManifest(
  detail: ObservedContainerDetail,
  image: ImageDefaults | undefined,
): Translation<'Container'> {
  const name = detail.Name.replace(/^\//, '');
  const config = detail.Config;
  const host: JsonRecord = isRecord(detail.HostConfig) ? detail.HostConfig : {};
  const networkMode = nonEmptyString(host.NetworkMode) ?? 'default';
  if (networkMode.startsWith('container:'))
    return {
      ok: false,
      reason: `it shares another container's network (${networkMode}), which a manifest cannot express`,
    };
  const warnings: string[] = [];
  if (image === undefined)
    warnings.push(
      'its image could not be inspected: env, command and labels the image sets are written out too',
    );

  const imageEnv = new Set(image?.Env ?? []);
  const env = (stringList(config.Env) ?? []).filter((entry) => !imageEnv.has(entry));
  const imageLabels = image?.Labels ?? {};
  const labels = userLabels(
    Object.fromEntries(Object.entries(config.Labels ?? {}).filter(([k, v]) => imageLabels[k] !== v)),
  );
  const entrypoint = stringList(config.Entrypoint);
  const cmd = stringList(config.Cmd);
  // Setting an entrypoint resets the image's command, so the command is the image's only if both are.
  const ownEntrypoint = !sameList(entrypoint, image?.Entrypoint);
  const ownCommand = ownEntrypoint || !sameList(cmd, image?.Cmd);
  const workingDir = nonEmptyString(config.WorkingDir);
  const user = nonEmptyString(config.User);
  const hostname = nonEmptyString(config.Hostname);
  const generatedHostname = hostname === detail.Id.slice(0, 12) || networkMode === 'host';

  const attached = Object.entries(asRecord(detail.NetworkSettings?.Networks) ?? {});
  const own = new Set([detail.Id.slice(0, 12), name]);
  const networks = attached
    .map(([network, settings]) => {
      const aliases = (stringList(asRecord(settings)?.Aliases) ?? []).filter((a) => !own.has(a));
      return aliases.length === 0 ? network : { name: network, aliases: [...new Set(aliases)].sort() };
    })
    // The one joined at create (NetworkMode) goes first: the controller creates the container on it.
    .sort((a, b) => Number(attachmentName(b) === networkMode) - Number(attachmentName(a) === networkMode));
  const onlyDefaultBridge =
    (networkMode === 'default' || networkMode === 'bridge') &&
    networks.length === 1 &&
    networks[0] === 'bridge';
  const ports = Object.entries(asRecord(host.PortBindings) ?? {}).flatMap(([key, list]) => {
    const [target = '', protocol = DEFAULT_PROTOCOL] = key.split('/');
    return asArray(list).map((raw) => {
      const binding = asRecord(raw);
      const hostIp = nonEmptyString(binding?.HostIp);
      const published = Number(nonEmptyString(binding?.HostPort) ?? 0);
      return (
        tidy({
          target: Number(target),
          published: published > 0 ? published : undefined,
          protocol: unlessDefault(protocol, DEFAULT_PROTOCOL),
          hostIp: hostIp === '0.0.0.0' ? undefined : hostIp,
        }) ?? {}
      );
    });
  });
  const mounts = [
    ...asArray(host.Mounts).flatMap((raw) => {
      const m = normalMount(raw);
      return m === undefined ? [] : [manifestMount(m)];
    }),
    ...bindMounts(host.Binds),
  ];
  const healthcheck = sameData(config.Healthcheck ?? null, image?.Healthcheck ?? null)
    ? undefined
    : manifestHealthcheck(config.Healthcheck);
  const restart = unlessDefault(
    nonEmptyString(getIn(host, ['RestartPolicy', 'Name'])),
    DEFAULT_CONTAINER_RESTART,
  );
  const pids = positiveNumber(host.PidsLimit);

  const spec = tidy({
    image: unpinnedImage(config.Image),
    entrypoint: ownEntrypoint ? entrypoint : undefined,
    command: ownCommand ? cmd : undefined,
    workingDir: workingDir === nonEmptyString(image?.WorkingDir) ? undefined : workingDir,
    user: user === nonEmptyString(image?.User) ? undefined : user,
    hostname: generatedHostname ? undefined : hostname,
    env: envMap(env),
    networks: onlyDefaultBridge || networks.length === 0 ? undefined : networks,
    ports: ports.length > 0 ? ports : undefined,
    mounts: mounts.length > 0 ? mounts : undefined,
    capAdd: stringList(host.CapAdd),
    capDrop: stringList(host.CapDrop),
    restart,
    resources: tidy({
      limits: tidy({
        cpus:
          positiveNumber(host.NanoCpus) === undefined
            ? undefined
            : formatCpus(positiveNumber(host.NanoCpus) ?? 0),
        memory:
          positiveNumber(host.Memory) === undefined
            ? undefined
            : formatBytes(positiveNumber(host.Memory) ?? 0),
        pids: pids !== undefined && pids > 0 ? pids : undefined,
      }),
    }),
    healthcheck,
    state: detail.State.Running ? undefined : 'stopped',
  });
  const unsupported = inexpressibleContainerSettings(detail);
  if (unsupported.length > 0)
    warnings.push(
      `sets ${unsupported.join(', ')}, which a manifest cannot express: lost when it is recreated`,
    );
  return finish('Container', name, labels, spec ?? {}, warnings);
}

function attachmentName(attachment: string | { name: string }): string {
  return typeof attachment === 'string' ? attachment : attachment.name;
}
