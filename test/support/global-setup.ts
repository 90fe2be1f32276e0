/**
 * Runs once before the suite: checks the lab is up (scripts/lab.sh up starts it) and fixes one
 * run id, so every Docker object a test creates can carry the same per-run label.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export default function setup(): void {
  try {
    execFileSync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], { stdio: 'pipe' });
  } catch {
    throw new Error('Docker is not reachable: run `sudo bash scripts/lab.sh up` first');
  }
  fixRunId();
}

export function fixRunId(): void {
  process.env.SWARMKEEPER_TEST_RUN ??= `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}
