/** The swarmkeeper image, built for a test by scripts/build-local-image.sh (no registry involved). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Builds the controller image as `tag` on the engine at `dockerHost` (the lab engine by default).
 * Idempotent: a few seconds when the engine has it and dist/ and the lockfile are unchanged.
 */
export async function buildSwarmkeeperImage(tag: string, dockerHost?: string): Promise<void> {
  await run('bash', ['scripts/build-local-image.sh', 'controller'], {
    env: {
      ...process.env,
      SWARMKEEPER_IMAGE: tag,
      ...(dockerHost !== undefined && { DOCKER_HOST: dockerHost }),
    },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
}
