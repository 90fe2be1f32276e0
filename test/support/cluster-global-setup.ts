/**
 * Runs once before test/cluster (npm run test:cluster): checks that the multi-node Swarm of
 * scripts/cluster-lab.sh is up with every node ready, and that Redis answers, then fixes the run id.
 */
import { execFileSync } from 'node:child_process';
import { fixRunId } from './global-setup.js';

const UP_HINT = 'run `sudo bash scripts/cluster-lab.sh up` first (and `scripts/lab.sh up` for Redis)';

export default function setup(): void {
  let nodes: string[];
  try {
    nodes = execFileSync(
      'docker',
      ['-H', 'unix:///var/run/docker-skc1.sock', 'node', 'ls', '--format', '{{.Status}} {{.Availability}}'],
      { stdio: 'pipe', encoding: 'utf8' },
    )
      .trim()
      .split('\n');
  } catch {
    throw new Error(`the cluster lab's manager (/var/run/docker-skc1.sock) does not answer: ${UP_HINT}`);
  }
  const ready = nodes.filter((n) => n === 'Ready Active').length;
  if (ready < 3) throw new Error(`the cluster lab has ${ready} of 3 nodes ready and active: ${UP_HINT}`);
  try {
    execFileSync('redis-cli', ['-u', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'ping'], {
      stdio: 'pipe',
    });
  } catch {
    throw new Error(`Redis does not answer: ${UP_HINT}`);
  }
  fixRunId();
}
