import { describe, expect, it } from 'vitest';
import { decodeStatus, encodeStatus } from '../../src/desired/codec.js';
import type { NodeVolumeCheck } from '../../src/desired/store.js';
import { folderOfVolume } from '../../src/homes/user-volume.js';
import type { ObservedTask } from '../../src/observed/reader.js';
import { demuxLogs } from '../../src/observed/reader.js';
import { mountsElsewhere } from '../../src/reconcile/index.js';
import {
  VOLUME_CHECK_ENV,
  VOLUME_CHECK_RESULT_KIND,
  decideVolumeCheck,
  isVolumeCheckJob,
  jobFinished,
  nodeOutcomes,
  parseVolumeCheckResults,
  summariseNodes,
  templateHashOf,
  volumeCheckInput,
  volumeCheckJobName,
  volumeCheckJobSpec,
  type ObservedJob,
  type VolumeCheckResult,
} from '../../src/reconcile/volume-check.js';
import { LABELS } from '../../src/resources/metadata.js';

const HASH = 'e3be30ff7cd5fa08';

function result(nodeId: string, extra: Partial<VolumeCheckResult> = {}): VolumeCheckResult {
  return {
    kind: VOLUME_CHECK_RESULT_KIND,
    homeFolders: 'homes',
    templateHash: HASH,
    nodeId,
    hostname: `host-${nodeId}`,
    checked: 2,
    replaced: [],
    inUse: [],
    kept: [],
    errors: [],
    ...extra,
  };
}

function task(nodeId: string, state: string, extra: Partial<ObservedTask> = {}): ObservedTask {
  return {
    id: `t-${nodeId}-${state}`,
    serviceId: 'svc',
    slot: undefined,
    nodeId,
    desiredState: 'complete',
    state,
    message: state,
    error: undefined,
    containerId: undefined,
    exitCode: state === 'complete' ? 0 : undefined,
    timestamp: '2026-11-26T10:00:00.000Z',
    ...extra,
  };
}

describe('mountsElsewhere: only volumes whose data lives elsewhere may be removed', () => {
  it.each([
    { options: { type: 'nfs4', o: 'addr=10.0.0.1,rw', device: ':/var/nfs/a/' }, expected: true },
    { options: { type: 'nfs', o: 'addr=10.0.0.1', device: ':/var/nfs/a' }, expected: true },
    { options: { type: 'none', o: 'bind', device: '/var/nfs/a' }, expected: true },
    { options: { type: 'none', o: 'rbind,ro', device: '/var/nfs/a' }, expected: true },
    { options: { type: 'none', o: 'ro', device: '/var/nfs/a' }, expected: false },
    { options: { type: 'none', o: 'ro,bind', device: '/var/nfs/a' }, expected: true },
    { options: { type: 'none', o: 'bind' }, expected: false },
    { options: { type: 'tmpfs', device: 'tmpfs' }, expected: false },
    { options: { type: 'ext4', device: '/dev/sdb1' }, expected: false },
    { options: {}, expected: false },
    { options: null, expected: false },
  ])('$options → $expected', ({ options, expected }) => {
    expect(mountsElsewhere(options)).toBe(expected);
  });
});

describe('folderOfVolume', () => {
  it.each([
    { template: 'jupyterhub-user-{username}', volume: 'jupyterhub-user-alice', folder: 'alice' },
    { template: 'jupyterhub-user-{username}', volume: 'jupyterhub-user-a-2eb-40x', folder: 'a-2eb-40x' },
    { template: 'home.{username}.v2', volume: 'home.bob.v2', folder: 'bob' },
    { template: 'home.{username}.v2', volume: 'homeXbobXv2', folder: undefined },
    { template: 'jupyterhub-user-{username}', volume: 'other-alice', folder: undefined },
    { template: 'jupyterhub-user-{username}', volume: 'jupyterhub-user-.hidden', folder: undefined },
  ])('$volume from $template → $folder', ({ template, volume, folder }) => {
    expect(folderOfVolume(template, volume)).toBe(folder);
  });
});

describe('parseVolumeCheckResults', () => {
  const line = (r: VolumeCheckResult): string => JSON.stringify(r);
  it.each([
    { name: 'empty logs', logs: '', nodes: [] },
    {
      name: 'one line per node',
      logs: `${line(result('n1'))}\n${line(result('n2'))}\n`,
      nodes: ['n1', 'n2'],
    },
    {
      name: 'other output and broken JSON are skipped',
      logs: `starting\n{"level":40,"msg":"x"}\n{not json\n${line(result('n1'))}`,
      nodes: ['n1'],
    },
    {
      name: 'a line for another template is not this job’s',
      logs: line(result('n1', { templateHash: 'other' })),
      nodes: [],
    },
    {
      name: 'a line missing fields is skipped',
      logs: JSON.stringify({ kind: VOLUME_CHECK_RESULT_KIND, nodeId: 'n1', templateHash: HASH }),
      nodes: [],
    },
  ])('$name', ({ logs, nodes }) => {
    expect([...parseVolumeCheckResults(logs, HASH).keys()].sort()).toEqual(nodes);
  });

  it('keeps the last line of a node that printed twice', () => {
    const logs = `${line(result('n1', { checked: 1 }))}\n${line(result('n1', { checked: 5 }))}`;
    expect(parseVolumeCheckResults(logs, HASH).get('n1')?.checked).toBe(5);
  });
});

describe('nodeOutcomes: tasks and result lines merged per node', () => {
  const nodes = [
    { id: 'n1', hostname: 'alpha' },
    { id: 'n2', hostname: 'beta' },
  ];
  const userOf = (folder: string): string => (folder === 'c4ca4238' ? 'carol' : folder);
  it.each<{
    name: string;
    tasks: ObservedTask[];
    results: VolumeCheckResult[];
    expected: Partial<NodeVolumeCheck>[];
  }>([
    {
      name: 'all in line',
      tasks: [task('n1', 'complete')],
      results: [result('n1')],
      expected: [{ node: 'n1', hostname: 'alpha', state: 'Synced', message: '2 volumes checked' }],
    },
    {
      name: 'replaced and in use, the user named from the folder',
      tasks: [task('n1', 'complete'), task('n2', 'complete')],
      results: [
        result('n1', { replaced: ['u-alice'] }),
        result('n2', { inUse: [{ volume: 'u-c4ca4238', folder: 'c4ca4238', detail: 'used by x' }] }),
      ],
      expected: [
        { node: 'n1', state: 'Synced', replaced: ['u-alice'], inUse: [] },
        { node: 'n2', state: 'OutOfSync', inUse: [{ volume: 'u-c4ca4238', user: 'carol' }] },
      ],
    },
    {
      name: 'a failed task without a line reports the task error',
      tasks: [
        task('n1', 'complete'),
        task('n2', 'failed', { error: 'task: non-zero exit (1)', exitCode: 1 }),
      ],
      results: [result('n1')],
      expected: [
        { node: 'n1', state: 'Synced' },
        { node: 'n2', state: 'Failed', message: 'task failed (exit 1): task: non-zero exit (1)' },
      ],
    },
    {
      name: 'a failed task with a line reports the line’s errors',
      tasks: [task('n1', 'failed', { exitCode: 1 })],
      results: [result('n1', { errors: [{ volume: 'u-bob', message: 'SK_DOCKER_ENGINE: boom' }] })],
      expected: [
        { node: 'n1', state: 'Failed', message: '2 volumes checked; u-bob: SK_DOCKER_ENGINE: boom' },
      ],
    },
    {
      name: 'a volume that holds its own data is OutOfSync',
      tasks: [task('n1', 'complete')],
      results: [result('n1', { kept: [{ volume: 'u-dan', folder: 'dan', reason: 'holds its own data' }] })],
      expected: [{ node: 'n1', state: 'OutOfSync' }],
    },
    {
      name: 'a task still running, and one complete without a line',
      tasks: [task('n1', 'running'), task('n2', 'complete')],
      results: [],
      expected: [
        { node: 'n1', state: 'Running', message: 'task running' },
        { node: 'n2', state: 'Unknown' },
      ],
    },
    {
      name: 'the newest task of a node counts; a node nobody knows keeps the line’s hostname',
      tasks: [
        task('n3', 'failed', { timestamp: '2026-11-26T09:00:00.000Z' }),
        task('n3', 'complete', { timestamp: '2026-11-26T10:00:00.000Z' }),
      ],
      results: [result('n3')],
      expected: [{ node: 'n3', hostname: 'host-n3', state: 'Synced' }],
    },
  ])('$name', ({ tasks, results, expected }) => {
    const outcomes = nodeOutcomes(tasks, new Map(results.map((r) => [r.nodeId, r])), nodes, userOf);
    expect(outcomes).toHaveLength(expected.length);
    expected.forEach((e, i) => expect(outcomes[i]).toMatchObject(e));
  });
});

describe('summariseNodes', () => {
  const node = (state: NodeVolumeCheck['state'], inUse: NodeVolumeCheck['inUse'] = []): NodeVolumeCheck => ({
    node: 'n',
    hostname: 'h',
    state,
    replaced: [],
    inUse,
    message: '',
  });
  it.each([
    { nodes: [], inSync: true, message: '' },
    { nodes: [node('Synced')], inSync: true, message: 'volumes on 1/1 nodes match the template' },
    {
      nodes: [node('Synced'), node('OutOfSync', [{ volume: 'v', user: 'bob' }])],
      inSync: false,
      message: 'volumes on 1/2 nodes match the template; sessions to restart: bob on h',
    },
    {
      nodes: [node('Failed'), node('Running')],
      inSync: false,
      message: 'volumes on 0/2 nodes match the template; 1 Running; 1 Failed',
    },
  ])('$message', ({ nodes, inSync, message }) => {
    expect(summariseNodes(nodes)).toEqual({ inSync, message });
  });
});

describe('jobFinished', () => {
  const started = 1_000_000;
  it.each([
    { name: 'no task yet', tasks: [], now: started + 1000, finished: false },
    { name: 'no task after the timeout', tasks: [], now: started + 60_000, finished: true },
    {
      name: 'every task done',
      tasks: [task('n1', 'complete'), task('n2', 'rejected')],
      now: started,
      finished: true,
    },
    {
      name: 'one still running',
      tasks: [task('n1', 'complete'), task('n2', 'running')],
      now: started,
      finished: false,
    },
    {
      name: 'one stuck past the timeout',
      tasks: [task('n2', 'assigned')],
      now: started + 60_000,
      finished: true,
    },
  ])('$name', ({ tasks, now, finished }) => {
    expect(jobFinished(tasks, started, now, 60_000)).toBe(finished);
  });
});

describe('decideVolumeCheck', () => {
  const job = (extra: Partial<ObservedJob> = {}): ObservedJob => ({
    name: 'job',
    templateHash: HASH,
    startedAt: 0,
    finished: true,
    nodes: ['n1', 'n2'],
    outcomes: [],
    ...extra,
  });
  const synced: NodeVolumeCheck = {
    node: 'n1',
    hostname: 'a',
    state: 'Synced',
    replaced: [],
    inUse: [],
    message: '',
  };
  const base = { templateHash: HASH, eligibleNodes: ['n1', 'n2'], now: 1000, rerunAfterMs: 600_000 };
  it.each([
    { name: 'no job ever ran', latest: undefined, decision: { action: 'start', reason: 'first-run' } },
    {
      name: 'the last job checked this template',
      latest: job({ outcomes: [synced] }),
      decision: { action: 'none' },
    },
    {
      name: 'the template changed',
      latest: job({ templateHash: 'old' }),
      decision: { action: 'start', reason: 'template-changed' },
    },
    {
      name: 'the template changed while a job runs: wait for it',
      latest: job({ templateHash: 'old', finished: false }),
      decision: { action: 'wait' },
    },
    { name: 'the job runs', latest: job({ finished: false }), decision: { action: 'wait' } },
    {
      name: 'a node in use: rerun later',
      latest: job({ outcomes: [{ ...synced, state: 'OutOfSync' }] }),
      decision: { action: 'none', retryInMs: 599_000 },
    },
    {
      name: 'a node failed, the rerun is due',
      latest: job({ outcomes: [{ ...synced, state: 'Failed' }] }),
      now: 600_000,
      decision: { action: 'start', reason: 'rerun' },
    },
    {
      name: 'a node joined after the job',
      latest: job({ nodes: ['n1'] }),
      now: 700_000,
      decision: { action: 'start', reason: 'rerun' },
    },
  ])('$name', ({ latest, decision, now }) => {
    expect(decideVolumeCheck({ ...base, latest, now: now ?? base.now })).toEqual(decision);
  });
});

describe('the job service', () => {
  const template = {
    name: 'jupyterhub-user-{username}',
    driver: 'local',
    driverOpts: { type: 'nfs4', o: 'addr=10.0.0.9' },
  };
  it('is a global job of the image with the socket, its input and its labels', () => {
    const input = { homeFolders: 'homes', owner: 'swarmkeeper', templateHash: HASH, volume: template };
    const spec = volumeCheckJobSpec({
      name: 'homes-vc-x',
      image: 'reg/swarmkeeper:1',
      input,
      labels: { team: 'a' },
    });
    expect(spec).toMatchObject({
      Name: 'homes-vc-x',
      Mode: { GlobalJob: {} },
      Labels: {
        team: 'a',
        [LABELS.managed]: 'true',
        [LABELS.volumeCheck]: 'homes',
        [LABELS.volumeTemplateHash]: HASH,
      },
      TaskTemplate: {
        ContainerSpec: {
          Image: 'reg/swarmkeeper:1',
          Args: ['homes', 'check-volumes'],
          Labels: { [LABELS.volumeCheck]: 'homes', [LABELS.owner]: 'swarmkeeper' },
          User: '0:0',
          Mounts: [{ Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' }],
          CapabilityDrop: ['ALL'],
        },
        RestartPolicy: { Condition: 'none' },
      },
    });
    expect(isVolumeCheckJob(spec.Labels)).toBe(true);
    expect(isVolumeCheckJob({ [LABELS.managed]: 'true' })).toBe(false);
    // The command reads back exactly what the controller put in.
    const env =
      spec.TaskTemplate && 'ContainerSpec' in spec.TaskTemplate ? spec.TaskTemplate.ContainerSpec?.Env : [];
    const raw = (env ?? [])
      .find((e) => e.startsWith(`${VOLUME_CHECK_ENV}=`))
      ?.slice(VOLUME_CHECK_ENV.length + 1);
    expect(volumeCheckInput.parse(JSON.parse(raw ?? 'null'))).toEqual(input);
  });

  it.each([
    { homes: 'homes', now: 0, name: `homes-vc-${HASH.slice(0, 8)}-0` },
    { homes: 'x'.repeat(80), now: 1_764_150_000_000, length: 63 },
  ])('is named from the HomeFolders, the template and the time ($homes)', ({ homes, now, name, length }) => {
    const result = volumeCheckJobName(homes, HASH, now);
    if (name !== undefined) expect(result).toBe(name);
    if (length !== undefined) expect(result).toHaveLength(length);
  });

  it('reruns only when the template changes, not its key order or defaults', () => {
    expect(templateHashOf({ name: 'u-{username}', driverOpts: { a: '1', b: '2' } })).toBe(
      templateHashOf({ name: 'u-{username}', driver: 'local', driverOpts: { b: '2', a: '1' } }),
    );
    expect(templateHashOf({ name: 'u-{username}' })).not.toBe(templateHashOf({ name: 'v-{username}' }));
  });
});

describe('status and logs plumbing', () => {
  it('keeps status.nodes through the store codec, and drops a garbled one', () => {
    const nodes: NodeVolumeCheck[] = [
      {
        node: 'n1',
        hostname: 'a',
        state: 'OutOfSync',
        replaced: ['v1'],
        inUse: [{ volume: 'v2', user: 'bob' }],
        message: 'm',
      },
    ];
    expect(decodeStatus(encodeStatus({ sync: 'OutOfSync', nodes }))?.nodes).toEqual(nodes);
    expect(decodeStatus({ sync: 'Synced', nodes: '[{"node":1}]' })?.nodes).toBeUndefined();
    expect(decodeStatus({ sync: 'Synced', nodes: 'not json' })).toEqual({ sync: 'Synced' });
  });

  it('demultiplexes the engine’s log frames', () => {
    const frame = (stream: number, text: string): Buffer => {
      const payload = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };
    expect(demuxLogs(Buffer.concat([frame(1, '{"a":1}\n'), frame(1, '{"b":2}\n')]))).toBe(
      '{"a":1}\n{"b":2}\n',
    );
    expect(demuxLogs(Buffer.from('plain tty output\n'))).toBe('plain tty output\n');
    expect(demuxLogs(Buffer.alloc(0))).toBe('');
  });
});
