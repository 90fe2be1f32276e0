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
