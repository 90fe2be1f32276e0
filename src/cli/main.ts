/**
 * The `swarmkeeper` command line. Data goes to stdout, diagnostics to stderr; exit 0 on success,
 * 1 when the operation failed or found problems, 2 for a command used wrongly.
 */
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, type Config } from '../config.js';
import { openEventStream } from '../desired/events.js';
import { openDesiredStore } from '../desired/open.js';
import type { DesiredStore } from '../desired/store.js';
import { SwarmkeeperError, UsageError, describeError } from '../errors.js';
import { manifestJsonSchema } from '../resources/schema.js';
import { runApply } from './commands/apply.js';
import { runDelete } from './commands/delete.js';
import { runGet } from './commands/get.js';
import { runValidate } from './commands/validate.js';
import { runDiff } from './commands/diff.js';
import { EVENT_OUTPUTS, runEvents, type EventOutput } from './commands/events.js';
import { runExport } from './commands/export.js';
import { runPrune } from './commands/prune.js';
import { runStatus } from './commands/status.js';
import { runCheckVolumes, runSpawnerConfig } from './commands/homes.js';
import { createControllerLogging, runController } from '../main.js';
import { OUTPUT_FORMATS } from './format.js';
import { EXIT, processIo, type CliIo } from './io.js';

interface GlobalOptions {
  redisUrl?: string;
  prefix?: string;
}

/** Runs the CLI and returns the exit code; it never calls process.exit, so it can run in-process in tests. */
export async function main(
  argv: readonly string[],
  io: CliIo = processIo,
  environment = process.env,
): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('swarmkeeper')
    .description('Keeps a JupyterHub deployment on Docker Swarm at the desired state held in Redis.')
    .option('--redis-url <url>', 'Redis to use (env REDIS_URL, default redis://127.0.0.1:6379)')
    .option('--prefix <prefix>', 'Redis key prefix (env SWARMKEEPER_PREFIX, default swarmkeeper)')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();

  const config = (): Config => {
    const globals = program.opts<GlobalOptions>();
    return loadConfig({
      ...environment,
      ...(globals.redisUrl !== undefined && { REDIS_URL: globals.redisUrl }),
      ...(globals.prefix !== undefined && { SWARMKEEPER_PREFIX: globals.prefix }),
    });
  };
  const withStore = async (action: (store: DesiredStore) => Promise<number>): Promise<void> => {
    const store = await openDesiredStore(config(), 'cli');
    try {
      exitCode = await action(store);
    } finally {
      await store.close();
    }
  };

  program
    .command('apply')
    .description('Write manifests (multi-document YAML or JSON) into the desired store, atomically')
    .requiredOption('-f, --filename <path...>', 'file, folder or - for stdin')
    .option('-R, --recursive', 'descend into sub-folders')
    .option('--dry-run', 'print what would change in the store and write nothing')
    .action(async (options: { filename: string[]; recursive?: boolean; dryRun?: boolean }) =>
      withStore((store) => runApply(store, io, options)),
    );

  program
    .command('get')
    .description('Print desired resources: all, one kind, or one resource')
    .argument('[kind]', 'Network, Volume, Config, Secret, Service, Container, HomeFolders or User')
    .argument('[name]', 'resource name')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .action(
      async (
        kind: string | undefined,
        name: string | undefined,
        options: { output: (typeof OUTPUT_FORMATS)[number] },
      ) => withStore((store) => runGet(store, io, { kind, name, output: options.output })),
    );

  program
    .command('delete')
    .description('Remove a resource from the desired store (the controller then removes what it owns)')
    .argument('<kind>')
    .argument('<name>')
    .action(async (kind: string, name: string) => withStore((store) => runDelete(store, io, { kind, name })));

  program
    .command('validate')
    .description('Check manifests offline, without Redis; prints file:line, field path and message per error')
    .requiredOption('-f, --filename <path...>', 'file, folder or - for stdin')
    .option('-R, --recursive', 'descend into sub-folders')
    .action(async (options: { filename: string[]; recursive?: boolean }) => {
      exitCode = await runValidate(io, options);
    });

  program
    .command('run')
    .description('Run the controller: keep the Swarm at the desired state until SIGTERM')
    .option('--once', 'make one pass over every resource, then exit')
    .action(async (options: { once?: boolean }) => {
      const settings = config();
      const { log, events } = createControllerLogging(settings);
      await runController(settings, { once: options.once ?? false, log, events, stopSignal: stopSignal() });
    });

  program
    .command('status')
    .description('Print every resource with its sync and health, as the controller last wrote them')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (options: { output: 'table' | 'json' }) =>
      withStore((store) => runStatus(store, io, { output: options.output })),
    );

  program
    .command('diff')
    .description(
      'Print field-level differences between manifests and the live Swarm; exit 1 when they differ',
    )
    .requiredOption('-f, --filename <path...>', 'file, folder or - for stdin')
    .option('-R, --recursive', 'descend into sub-folders')
    .action(async (options: { filename: string[]; recursive?: boolean }) => {
      exitCode = await runDiff(io, { ...options, owner: config().SWARMKEEPER_PREFIX });
    });

  program
    .command('events')
    .description('Print the drifts and actions the controller recorded, newest last; -f follows until Ctrl-C')
    .option('-f, --follow', 'keep printing new events as they come')
    .option('--kind <kind>', 'only this kind (service, svc, Service, ...)')
    .option('--name <name>', 'only resources of this name')
    .option('--limit <n>', 'how many of the newest events to print first', '50')
    .addOption(new Option('-o, --output <format>', 'output format').choices(EVENT_OUTPUTS).default('text'))
    .action(
      async (options: {
        follow?: boolean;
        kind?: string;
        name?: string;
        limit: string;
        output: EventOutput;
      }) => {
        const stream = await openEventStream(config(), 'cli');
        const stop = new AbortController();
        const abort = (): void => stop.abort();
        process.once('SIGINT', abort);
        process.once('SIGTERM', abort);
        try {
          exitCode = await runEvents(
            stream,
            io,
            {
              follow: options.follow ?? false,
              kind: options.kind,
              name: options.name,
              output: options.output,
              limit: parseCount(options.limit, '--limit'),
            },
            stop.signal,
          );
        } finally {
          process.off('SIGINT', abort);
          process.off('SIGTERM', abort);
          await stream.close();
        }
      },
    );

  program
    .command('export')
    .description(
      'Write manifests for what runs on the Swarm (and home folders on an export), to adopt a deployment built by hand',
    )
    .option(
      '--selector <key=value...>',
      'only objects with these labels (all must match; a bare key must exist)',
    )
    .option('--names <names>', 'only these names, comma-separated; "*" matches any run of characters')
    .option('-o, --output-dir <dir>', 'write one file per kind into this folder instead of printing')
    .option('--homes-root <path>', 'also export the user folders under this NFS root')
    .addOption(
      new Option('--homes-naming <naming>', 'how folder names were made from usernames')
        .choices(['plain', 'md5', 'escaped'])
        .default('plain'),
    )
    .option('--homes-name <name>', 'name of the HomeFolders resource', 'homes')
    .addOption(
      new Option('--homes-quota <driver>', 'read quotas back with this driver (xfs: SWARMKEEPER_XFS_QUOTA)')
        .choices(['none', 'xfs'])
        .default('none'),
    )
    .option('--homes-projects <file>', 'xfs: the ID:path projects file naming project IDs', '/etc/projects')
    .option('--homes-projid <file>', 'xfs: the name:ID projid file naming project IDs', '/etc/projid')
    .action(
      async (options: {
        selector?: string[];
        names?: string;
        outputDir?: string;
        homesRoot?: string;
        homesNaming: 'plain' | 'md5' | 'escaped';
        homesName: string;
        homesQuota: 'none' | 'xfs';
        homesProjects: string;
        homesProjid: string;
      }) => {
        const settings = config();
        exitCode = await runExport(io, {
          selector: options.selector ?? [],
          names: options.names,
          outputDir: options.outputDir,
          owner: settings.SWARMKEEPER_PREFIX,
          xfsQuotaBinary: settings.SWARMKEEPER_XFS_QUOTA,
          ...(options.homesRoot !== undefined && {
            homes: {
              root: options.homesRoot,
              naming: options.homesNaming,
              name: options.homesName,
              quota: options.homesQuota,
              projectsFile: options.homesProjects,
              projidFile: options.homesProjid,
            },
          }),
        });
      },
    );

  program
    .command('prune')
    .description(
      'Show the prune guard; with --confirm, let the controller remove objects of deleted resources',
    )
    .option('--confirm', 'release the guard')
    .action(async (options: { confirm?: boolean }) =>
      withStore((store) => runPrune(store, io, { confirm: options.confirm ?? false })),
    );

  const homes = program.command('homes').description('Per-user home folders');
  homes
    .command('spawner-config')
    .description('Print the SwarmSpawner mounts snippet for jupyterhub_config.py from a HomeFolders resource')
    .argument('<name>', 'HomeFolders resource name')
    .option('--target <path>', 'where the folder appears in the notebook container', '/home/jovyan/work')
    .action(async (name: string, options: { target: string }) =>
      withStore((store) => runSpawnerConfig(store, io, { name, target: options.target })),
    );
  homes
    .command('check-volumes')
    .description(
      "Check this node's per-user volumes against a template (the volume check job runs it; input in SWARMKEEPER_VOLUME_CHECK)",
    )
    .action(async () => {
      exitCode = await runCheckVolumes(io, environment);
    });

  program
    .command('schema')
    .description('Print the JSON Schema of manifests, for yaml-language-server and other editors')
    .action(() => {
      io.out(JSON.stringify(manifestJsonSchema(), null, 2));
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    return reportFailure(error, io);
  }
}

/** Resolves on the first SIGTERM or SIGINT: the controller then drains and exits 0. */
function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

/** A whole number of at least 0 given as a flag; anything else is a usage error. */
function parseCount(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, not "${text}"`);
  return Number(text);
}

/** The one place a CLI failure is reported: once, on stderr, with its code. */
function reportFailure(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its message; help and version are successes.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof UsageError) {
    io.err(`error: ${error.message}`);
    return EXIT.usage;
  }
  if (error instanceof SwarmkeeperError) {
    io.err(`error [${error.code}]: ${error.message}`);
    return EXIT.failed;
  }
  io.err(`error: ${describeError(error)}`);
  return EXIT.failed;
}
