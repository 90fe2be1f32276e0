/**
 * Runs once before test/cluster (npm run test:cluster): checks that the multi-node Swarm of
 * scripts/cluster-lab.sh is up with every node ready and its own engine at /var/run/docker.sock in
 * its mount namespace, and that Redis answers, then fixes the run id.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  // A task that mounts /var/run/docker.sock must reach its own node's engine (see own_socket in
  // scripts/cluster-lab.sh); a restart of the lab engine undoes that until `up` runs again.
  for (const node of [1, 2, 3]) {
    // The engine's own pidfile: the script's state folder moves (CI gives it one of its own).
    const pidfile = `/var/run/docker-skc${node}.pid`;
    const [own, seen] = [`unix:///var/run/docker-skc${node}.sock`, 'unix:///var/run/docker.sock'].map(
      (host) => {
        try {
          const pid = readFileSync(pidfile, 'utf8').trim();
          return execFileSync(
            'nsenter',
            ['--target', pid, '--mount', 'docker', '-H', host, 'info', '--format', '{{.Swarm.NodeID}}'],
            { stdio: 'pipe', encoding: 'utf8' },
          ).trim();
        } catch {
          return '';
        }
      },
    );
    if (own === '' || own !== seen)
      throw new Error(`node ${node}'s tasks do not reach its own engine at /var/run/docker.sock: ${UP_HINT}`);
  }
  try {
    execFileSync('redis-cli', ['-u', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'ping'], {
      stdio: 'pipe',
    });
  } catch {
    throw new Error(`Redis does not answer: ${UP_HINT}`);
  }
  fixRunId();
}
