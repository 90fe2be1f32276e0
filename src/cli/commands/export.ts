import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../errors.js';
import { exportDeployment, parseSelector, type LabelSelector } from '../../export/export.js';
import type { HomesExportOptions } from '../../export/homes.js';
import { dockerImageInspector } from '../../export/images.js';
import { EXPORT_FILES, renderFiles, renderManifests } from '../../export/render.js';
import { checkAdoption } from '../../export/verify.js';
import { XfsQuotaDriver } from '../../homes/quota/xfs.js';
import { createDocker } from '../../observed/docker-client.js';
import { DockerObservedReader } from '../../observed/reader.js';
import { EXIT, type CliIo } from '../io.js';

export interface ExportCommandOptions {
  /** `key=value` or `key`, each of which must match. */
  readonly selector: readonly string[];
  /** Comma-separated names or `*` patterns. */
  readonly names?: string | undefined;
  /** Write one file per kind here; absent, print every manifest on stdout. */
  readonly outputDir?: string | undefined;
  /** This deployment's key prefix, for checking what adoption would do. */
  readonly owner: string;
  readonly xfsQuotaBinary: string;
  readonly homes?: Omit<HomesExportOptions, 'quotaDriver'>;
}

/**
 * Manifests for what runs on the Swarm (and the user folders of an export), every one annotated
 * `swarmkeeper/adopt: "true"`. Data goes to stdout or the files; warnings, skipped objects and
 * what adopting would do go to stderr. Exit 1 when nothing matched.
 */
export async function runExport(io: CliIo, options: ExportCommandOptions): Promise<number> {
  let selector: LabelSelector[];
  try {
    selector = options.selector.map(parseSelector);
  } catch (error) {
    throw new UsageError(`--selector: ${(error as Error).message}`);
  }
  const names = options.names
    ?.split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const docker = createDocker();
  const reader = new DockerObservedReader(docker);
  const homes = options.homes;
  const result = await exportDeployment(reader, dockerImageInspector(docker), {
    selector,
    ...(names !== undefined && { names }),
    ...(homes !== undefined && {
      homes: {
        ...homes,
        quotaDriver: (projectNames) =>
          new XfsQuotaDriver({ mountPoint: homes.root, binary: options.xfsQuotaBinary, projectNames }),
      },
    }),
  });

  for (const skip of result.skipped) io.err(`skipped ${skip.kind}/${skip.name}: ${skip.reason}`);
  for (const warning of result.warnings) io.err(`warning: ${warning}`);
  if (result.resources.length === 0) {
    io.err('nothing to export: no object matched');
    return EXIT.failed;
  }

  if (options.outputDir === undefined) {
    io.out(renderManifests(result.resources));
  } else {
    const dir = options.outputDir;
    await mkdir(dir, { recursive: true });
    const files = renderFiles(result.resources, [
      `Exported by swarmkeeper export at ${new Date().toISOString()}.`,
      'Every object carries swarmkeeper/adopt: "true": applying these takes over what exists as it is.',
    ]);
    // A kind this export has none of must not keep a file from an earlier export.
    for (const file of Object.values(EXPORT_FILES)) {
      if (!files.has(file)) await rm(path.join(dir, file), { force: true });
    }
    for (const [file, text] of files) {
      await writeFile(path.join(dir, file), text);
      io.err(`wrote ${path.join(dir, file)}`);
    }
  }

  const checks = await checkAdoption(result.resources, result.snapshot, reader, options.owner);
  const count = (outcome: string): number => checks.filter((c) => c.outcome === outcome).length;
  io.err(
    `adoption: ${count('labels')} label-only update(s), which restart nothing; ${count('unchanged')} unchanged`,
  );
  for (const check of checks) {
    if (check.outcome === 'recreate')
      io.err(
        `adoption: ${check.ref} would be recreated to carry swarmkeeper's labels (it restarts): ${check.detail.join('; ')}`,
      );
    if (check.outcome === 'changes') io.err(`adoption: ${check.ref} ${check.detail.join('; ')}`);
  }
  return EXIT.ok;
}
