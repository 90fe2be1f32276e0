#!/usr/bin/env bash
# `npm run demo`: bring up the lab, apply manifests/examples/local, and run the controller in the
# foreground with readable logs. Break things from another terminal and watch them get repaired.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_ROOT=/tmp/swarmkeeper-demo
export SWARMKEEPER_PREFIX=${SWARMKEEPER_PREFIX:-swarmkeeper-demo}
export SWARMKEEPER_RESYNC_SECONDS=${SWARMKEEPER_RESYNC_SECONDS:-30}

bash scripts/lab.sh up
mkdir -p "$DEMO_ROOT/nfs" "$DEMO_ROOT/etc-jupyterhub"
npm run --silent build

if [ "${1:-}" = "--stack" ]; then
  # The controller as a Swarm stack (two replicas, one leader), from images built on this machine.
  bash scripts/build-local-image.sh
  for secret in swarmkeeper_redis_password swarmkeeper_api_token; do
    docker secret inspect "$secret" >/dev/null 2>&1 || node -e "process.stdout.write(require('crypto').randomBytes(32).toString('hex'))" | docker secret create "$secret" - >/dev/null
  done
  SWARMKEEPER_IMAGE=local/swarmkeeper:dev SWARMKEEPER_REDIS_IMAGE=local/redis:dev \
    SWARMKEEPER_NFS_ROOT="$DEMO_ROOT/nfs" SWARMKEEPER_DOCKER_GID=$(stat -c %g /var/run/docker.sock) \
    docker stack deploy --resolve-image never -c deploy/stack.yml swarmkeeper
  echo "== waiting for a controller replica"
  ctr=""
  for _ in $(seq 1 60); do
    ctr=$(docker ps -q -f label=com.docker.swarm.service.name=swarmkeeper_controller | head -n1)
    [ -n "$ctr" ] && docker exec "$ctr" node /app/bin/swarmkeeper.js get >/dev/null 2>&1 && break
    sleep 2
  done
  # Inside the stack the export is mounted at /var/nfs: that is the controller's HomeFolders root
  # (the per-user volumes still bind the host path). The image holds node and the app only, so
  # the manifests go to a fresh path each time.
  staged=$(mktemp -d)
  cp -r manifests/examples/local/. "$staged"
  sed -i "s#^  root: .*#  root: /var/nfs#" "$staged/50-homefolders.yaml"
  target=/tmp/manifests-$(date +%s)
  docker cp "$staged" "$ctr":"$target"
  rm -rf "$staged"
  docker exec "$ctr" node /app/bin/swarmkeeper.js apply -f "$target"
  sleep 5
  docker exec "$ctr" node /app/bin/swarmkeeper.js status || true
  cat <<TXT

swarmkeeper runs as the stack "swarmkeeper". Try:
  docker service rm nginx                     # repaired by the controller inside the Swarm
  docker service logs -f swarmkeeper_controller
  docker exec \$(docker ps -q -f label=com.docker.swarm.service.name=swarmkeeper_controller | head -n1) node /app/bin/swarmkeeper.js status
  docker stack rm swarmkeeper                 # removes swarmkeeper only; the deployment keeps running
TXT
  exit 0
fi

sk() { node bin/swarmkeeper.js "$@"; }

echo "== swarmkeeper validate -f manifests/examples/local"
sk validate -f manifests/examples/local
echo "== swarmkeeper apply -f manifests/examples/local"
sk apply -f manifests/examples/local
echo "== swarmkeeper get"
sk get || true

cat <<TXT

The controller starts below and converges the Swarm. From another terminal, try:
  docker service rm nginx                                   # recreated within milliseconds
  docker service scale jupyterhubserver=3                   # scaled back to 1
  docker service update --env-add FOO=bar nginx             # reverted
  docker stop letsencrypt-nginx                             # started again
  redis-cli HSET $SWARMKEEPER_PREFIX:desired:Service:nginx replicas 2
  redis-cli HSET $SWARMKEEPER_PREFIX:desired:Config:nginx-conf data 'new content'   # services move to the new config
  redis-cli HSET $SWARMKEEPER_PREFIX:desired:Service:nginx replicas two             # Invalid, naming spec.replicas
  SWARMKEEPER_PREFIX=$SWARMKEEPER_PREFIX node bin/swarmkeeper.js status
  SWARMKEEPER_PREFIX=$SWARMKEEPER_PREFIX node bin/swarmkeeper.js diff -f manifests/examples/local
Stop with Ctrl-C: the controller drains and exits; the deployment keeps running.

TXT
if [ "${1:-}" = "--once" ]; then
  sk run --once | npx pino-pretty --singleLine
  sk status || true
  exit 0
fi
exec node bin/swarmkeeper.js run | npx pino-pretty --singleLine
