#!/usr/bin/env bash
# `npm run demo`: bring up the lab, apply manifests/examples/local and show what the store holds.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_ROOT=/tmp/swarmkeeper-demo
export SWARMKEEPER_PREFIX=${SWARMKEEPER_PREFIX:-swarmkeeper-demo}

bash scripts/lab.sh up
mkdir -p "$DEMO_ROOT/nfs" "$DEMO_ROOT/etc-jupyterhub"
npm run --silent build

sk() { node bin/swarmkeeper.js "$@"; }

echo "== swarmkeeper validate -f manifests/examples/local"
sk validate -f manifests/examples/local
echo "== swarmkeeper apply -f manifests/examples/local"
sk apply -f manifests/examples/local
echo "== swarmkeeper get"
sk get
echo "== swarmkeeper get Service nginx -o yaml"
sk get Service nginx -o yaml

cat <<TXT

Desired state lives in Redis under the prefix "$SWARMKEEPER_PREFIX". Try:
  redis-cli HSET $SWARMKEEPER_PREFIX:desired:Service:nginx replicas 2
  redis-cli HSET $SWARMKEEPER_PREFIX:desired:User:carol email carol@example.org quota 2Gi
  redis-cli HSET $SWARMKEEPER_PREFIX:desired:Service:nginx replicas two    # then: get shows it Invalid, naming spec.replicas
  SWARMKEEPER_PREFIX=$SWARMKEEPER_PREFIX node bin/swarmkeeper.js get
TXT
