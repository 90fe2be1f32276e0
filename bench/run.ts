/**
 * The benchmarks of swarmkeeper against the real lab (Docker Swarm + Redis):
 *
 *   npm run build && npm run bench          full run (about an hour)
 *   npm run build && npm run bench:smoke    each benchmark in about a minute, for CI
 *
 * Options: --only repair,convergence,scale,flapping,storm   --no-peer   --redis-url URL
 *          --sizes 1000,5000,10000 (scale)   --flap-seconds N   --report-only
 *
 * Each benchmark writes bench/results/<name>.json (<name>.smoke.json in smoke mode); the run then
 * rewrites BENCHMARKS.md from every result file present. The exit code is non-zero only when a
 * benchmark is broken (it threw), never because a target was missed.
 */
import { loadavg } from 'node:os';
import { RunContext } from './lib/context.js';
import { ControllerProcess } from './lib/controller.js';
import { writeResult } from './lib/results.js';
import { errorMessage, say } from './lib/util.js';
import { runConvergence } from './convergence.js';
import { runFlapping } from './flapping.js';
import { runRepair } from './repair.js';
import { writeReport } from './report.js';
import { runScale } from './scale.js';
import { runStorm } from './storm.js';

const ALL = ['repair', 'convergence', 'scale', 'flapping', 'storm'] as const;
type BenchName = (typeof ALL)[number];

interface Args {
  smoke: boolean;
  only: BenchName[];
  peer: boolean;
  redisUrl?: string;
  sizes?: number[];
  flapSeconds?: number;
  reportOnly: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { smoke: false, only: [...ALL], peer: true, reportOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--smoke') args.smoke = true;
    else if (arg === '--no-peer') args.peer = false;
    else if (arg === '--report-only') args.reportOnly = true;
    else if (arg === '--only') {
      const names = value().split(',');
      for (const n of names) if (!ALL.includes(n as BenchName)) throw new Error(`unknown benchmark ${n}`);
      args.only = names as BenchName[];
    } else if (arg === '--redis-url') args.redisUrl = value();
    else if (arg === '--sizes') args.sizes = value().split(',').map(Number);
    else if (arg === '--flap-seconds') args.flapSeconds = Number(value());
    else throw new Error(`unknown argument ${arg}`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const command = `npm run ${args.smoke ? 'bench:smoke' : 'bench'}${
    process.argv.length > 2
      ? ` -- ${process.argv
          .slice(2)
          .filter((a) => a !== '--smoke')
          .join(' ')}`
      : ''
  }`;
  if (args.reportOnly) {
    await writeReport();
    return 0;
  }
  const ctx = new RunContext({
    smoke: args.smoke,
    ...(args.redisUrl !== undefined && { redisUrl: args.redisUrl }),
  });
  let failures = 0;
  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    say('cleaning up');
    // Controllers first: a running one would recreate what the cleanup removes.
    await ControllerProcess.stopAll();
    await ctx.close();
  };
  const onSignal = (): void => {
    say('interrupted');
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await ctx.open();
    say(
      `run ${ctx.runId}${ctx.smoke ? ' (smoke)' : ''}: ${ctx.machine.cores} cores, engine ${ctx.machine.engine}, redis ${ctx.redisUrl}${ctx.privateRedis ? ' (private)' : ''}`,
    );
    await writeResult('run', ctx.smoke, {
      runId: ctx.runId,
      command,
      startedAt: new Date().toISOString(),
      machine: ctx.machine,
      app: ctx.app,
      privateRedis: ctx.privateRedis,
      loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
      benchmarks: args.only,
    });
    for (const name of args.only) {
      say(`=== ${name}`);
      try {
        const load = loadavg().map((v) => Math.round(v * 100) / 100);
        const outagesBefore = ctx.outages.length;
        const result = await runOne(name, ctx, args);
        const restarts = ctx.outages.slice(outagesBefore).map((o) => Math.round((o.to - o.from) / 100) / 10);
        const file = await writeResult(name, ctx.smoke, {
          ...(result as object),
          runId: ctx.runId,
          command,
          meta: {
            machine: ctx.machine,
            app: ctx.app,
            privateRedis: ctx.privateRedis,
            loadAverageAtStart: load,
            engineOutagesS: restarts,
          },
        });
        say(`${name}: wrote ${file}`);
      } catch (error) {
        failures++;
        say(
          `${name}: BROKEN: ${error instanceof Error ? (error.stack ?? error.message) : errorMessage(error)}`,
        );
        await writeResult(name, ctx.smoke, {
          benchmark: name,
          smoke: ctx.smoke,
          runId: ctx.runId,
          command,
          broken: errorMessage(error),
        });
      }
    }
  } finally {
    await close();
  }
  await writeReport();
  say(failures === 0 ? 'done' : `${failures} benchmark(s) broken`);
  return failures === 0 ? 0 : 1;
}

function runOne(name: BenchName, ctx: RunContext, args: Args): Promise<unknown> {
  switch (name) {
    case 'repair':
      return runRepair(ctx, { peer: args.peer });
    case 'convergence':
      return runConvergence(ctx, { peer: args.peer });
    case 'scale':
      return runScale(ctx, args.sizes ? { sizes: args.sizes } : {});
    case 'flapping':
      return runFlapping(ctx, args.flapSeconds !== undefined ? { seconds: args.flapSeconds } : {});
    case 'storm':
      return runStorm(ctx);
  }
}

const code = await main().catch((error: unknown) => {
  say(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
});
// Streams and sockets of a broken benchmark may linger: the result files are written, so leave.
process.exit(code);
