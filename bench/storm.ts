/**
 * 5. Event storm: 200 services (replicas 0, so no tasks), then 200 out-of-band changes within
 * 5 s, one per service: 100 env changes, 50 image changes, 50 removals. All must be repaired;
 * the writes the controller issues (its DockerCallCounter) and the writes that took effect (Docker
 * events, minus the bench's own 200) are divided by the number of changes: the amplification.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { Service } from 'dockerode';
import { swarmkeeper } from './lib/cli.js';
import { IMAGE, removeRunObjects, type RunContext } from './lib/context.js';
import { ControllerProcess, diffCalls, totalCalls, WRITE_METHODS } from './lib/controller.js';
import { envOf, imageOf, taskTemplate, updateService } from './lib/docker.js';
import { classify, concerns, EventWatcher } from './lib/events.js';
import { notReady } from './lib/status.js';
import { now, round, say, sleep, summarize, waitFor, type Summary } from './lib/util.js';

export interface StormResult {
  readonly benchmark: 'storm';
  readonly smoke: boolean;
  readonly startedAt: string;
  readonly services: number;
  readonly changes: number;
  readonly changesByKind: Readonly<Record<string, number>>;
  /** First change → last change made (ms). */
  readonly stormMs: number;
  /** Last change made → every service right again (ms). */
  readonly allRepairedAfterMs: number;
  /** Each change made → its service right again (ms; read by listing every 50 ms). */
  readonly perChange: Summary;
  readonly unrepaired: number;
  /** Writes the controller issued (DockerCallCounter create/update/remove/...). */
  readonly writesIssued: number;
  readonly writesIssuedByMethod: Readonly<Record<string, number>>;
  /** Reads the controller made from the first change until everything was repaired. */
  readonly readsByMethod: Readonly<Record<string, number>>;
  /** Write events on the storm's services, minus the bench's own changes. */
  readonly writesEffective: number;
  readonly amplificationIssued: number;
  readonly amplificationEffective: number;
  /** Write calls in the 10 s after everything was repaired (should be none). */
  readonly writesAfter: number;
  readonly failureLogLines: number;
  readonly failureCodes: Readonly<Record<string, number>>;
  readonly notes: readonly string[];
}

type ChangeKind = 'env' | 'image' | 'remove';

export async function runStorm(ctx: RunContext): Promise<StormResult> {
  const startedAt = new Date().toISOString();
  const count = 200;
  const spreadMs = 5000;
  const np = ctx.newNamePrefix();
  const dir = path.join(ctx.tmp, 'storm');
  await mkdir(dir, { recursive: true });
  const names = Array.from({ length: count }, (_, i) => `${np}-s${String(i).padStart(3, '0')}`);
  const docs = names.map((name, i) => ({
    apiVersion: 'swarmkeeper/v1',
    kind: 'Service',
    metadata: { name, labels: ctx.labels },
    spec: {
      image: IMAGE,
      command: ['sleep', 'infinity'],
      env: { SLOT: String(i) },
      replicas: 0,
      stopGracePeriod: '1s',
    },
  }));
  const file = path.join(dir, 'storm.yaml');
  await writeFile(file, docs.map((d) => stringify(d)).join('---\n'));
  const otherImage = `local/busybox:${np}`;
  await ctx.docker.getImage(IMAGE).tag({ repo: 'local/busybox', tag: np });
  ctx.onCleanup(`image tag ${otherImage}`, async () => {
    await ctx.docker.getImage(otherImage).remove({ noprune: true });
  });

  const prefix = ctx.newPrefix('storm');
  const controller = new ControllerProcess({
    redisUrl: ctx.redisUrl,
    prefix,
    resyncSeconds: 30,
    logFile: ctx.logFile('storm'),
    keepMinLevel: 30,
  });
  const events = new EventWatcher(ctx.docker, (e) => concerns(e, [np]));
  await events.start();
  try {
    await controller.start();
    const applied = await swarmkeeper(['apply', '-f', file], { redisUrl: ctx.redisUrl, prefix });
    if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr.slice(0, 2000)}`);
    const refs = names.map((name) => ({ kind: 'Service', name }));
    await waitFor(
      'the storm services to converge',
      async () => (await notReady(ctx.redis, prefix, refs)).length === 0,
      {
        timeoutMs: 5 * 60_000,
        intervalMs: 500,
      },
    );
    await controller.idle(1000);
    await sleep(1000);
    say(`storm: ${count} services up; ${count} changes in ${spreadMs / 1000} s`);

    const right = (service: Service | undefined, i: number): boolean => {
      if (!service) return false;
      const image = imageOf(service);
      const env = envOf(service);
      return (
        service.Spec?.Labels?.['io.swarmkeeper.managed'] === 'true' &&
        (image === IMAGE || image.startsWith(`${IMAGE}@`)) &&
        env.length === 1 &&
        env[0] === `SLOT=${i}` &&
        taskTemplate(service) !== undefined
      );
    };
    const kinds: ChangeKind[] = names.map((_, i) => (i % 4 === 3 ? 'remove' : i % 4 === 2 ? 'image' : 'env'));
    const before = await controller.stats();
    const stormStart = now();
    const madeAt: number[] = new Array<number>(count).fill(Number.NaN);
    const repairedAt: number[] = new Array<number>(count).fill(Number.NaN);
    let changing = true;
    // Watch while the storm goes on: a service counts as repaired at the first listing, started
    // after its change was made, that shows it right.
    const watching = (async () => {
      const deadline = now() + 180_000;
      for (;;) {
        const t = now();
        const listed = await ctx.docker.listServices({ filters: JSON.stringify({ name: [np] }) });
        const byName = new Map(listed.map((s) => [s.Spec?.Name ?? '', s]));
        let missing = 0;
        names.forEach((name, i) => {
          if (!Number.isNaN(repairedAt[i]!)) return;
          const made = madeAt[i]!;
          if (!Number.isNaN(made) && made < t && right(byName.get(name), i)) repairedAt[i] = t;
          else missing++;
        });
        if ((missing === 0 && !changing) || now() > deadline) return;
        await sleep(50);
      }
    })();
    const changes = names.map(async (name, i) => {
      await sleep((i * spreadMs) / count);
      const kind = kinds[i];
      if (kind === 'remove') await ctx.docker.getService(name).remove();
      else
        await updateService(ctx.docker, name, (spec) => {
          const container = (spec.TaskTemplate as ReturnType<typeof taskTemplate>)?.ContainerSpec;
          if (!container) return;
          if (kind === 'image') container.Image = otherImage;
          else container.Env = [...(container.Env ?? []), `STORM=${i}`];
        });
      madeAt[i] = now();
    });
    await Promise.all(changes);
    changing = false;
    const lastChange = Math.max(...madeAt);
    await watching;
    const unrepaired = repairedAt.filter((t) => Number.isNaN(t)).length;
    const allRepaired = Math.max(...repairedAt.filter((t) => !Number.isNaN(t)));
    await controller.idle(500).catch(() => undefined);
    const afterRepair = await controller.stats();
    await sleep(10_000);
    const later = await controller.stats();

    const issued = diffCalls(before.calls, afterRepair.calls);
    const writesIssued = totalCalls(issued, WRITE_METHODS);
    const stormEvents = events.since(stormStart).filter((e) => e.receivedAt <= allRepaired + 500);
    const writeEvents = stormEvents.filter(
      (e) => e.type === 'service' && classify(e, new Set()) === 'write',
    ).length;
    const writesEffective = writeEvents - count;
    const failures = controller.logs.filter(
      (l) => l.receivedAt >= stormStart && l.msg === 'reconcile failed',
    );
    const codes: Record<string, number> = {};
    for (const f of failures) {
      const code = typeof f.code === 'string' ? f.code : 'none';
      codes[code] = (codes[code] ?? 0) + 1;
    }
    const perChange = names.flatMap((_, i) =>
      Number.isNaN(repairedAt[i]!) ? [] : [(repairedAt[i] ?? 0) - (madeAt[i] ?? 0)],
    );
    const result: StormResult = {
      benchmark: 'storm',
      smoke: ctx.smoke,
      startedAt,
      services: count,
      changes: count,
      changesByKind: {
        env: kinds.filter((k) => k === 'env').length,
        image: kinds.filter((k) => k === 'image').length,
        remove: kinds.filter((k) => k === 'remove').length,
      },
      stormMs: round(lastChange - stormStart),
      allRepairedAfterMs: round(allRepaired - lastChange),
      perChange: summarize(perChange),
      unrepaired,
      writesIssued,
      writesIssuedByMethod: Object.fromEntries(Object.entries(issued).filter(([m]) => WRITE_METHODS.test(m))),
      readsByMethod: Object.fromEntries(Object.entries(issued).filter(([m]) => !WRITE_METHODS.test(m))),
      writesEffective,
      amplificationIssued: round(writesIssued / count, 2),
      amplificationEffective: round(writesEffective / count, 2),
      writesAfter: totalCalls(diffCalls(afterRepair.calls, later.calls), WRITE_METHODS),
      failureLogLines: failures.length,
      failureCodes: codes,
      notes: [
        'Per-change repair times are read by listing the services every 50 ms (a listing of 200 services takes 10-30 ms), so they are coarse (+0-80 ms).',
      ],
    };
    say(
      `storm: repaired ${count - unrepaired}/${count}, ${writesIssued} writes issued (×${result.amplificationIssued}), ${writesEffective} effective`,
    );
    return result;
  } finally {
    events.stop();
    await controller.stop();
    await removeRunObjects(ctx, np);
    await ctx.dropPrefix(prefix);
  }
}
