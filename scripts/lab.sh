#!/usr/bin/env bash
# The swarmkeeper test lab: a real Docker Engine in Swarm mode and a real Redis on this machine.
#   scripts/lab.sh up      install what is missing, start what is not running, import the busybox image
#   scripts/lab.sh down    stop only what `up` started (recorded in the state folder)
#   scripts/lab.sh status  print what is running
#   scripts/lab.sh image   import the busybox image into the engine DOCKER_HOST names (scripts/cluster-lab.sh uses it)
# Idempotent. It never touches Docker objects it did not create: the only object it makes is the
# local/busybox:1 image, and it leaves the Swarm alone when one was already active before `up`.
set -euo pipefail

STATE_DIR=${SWARMKEEPER_LAB_STATE:-/var/lib/swarmkeeper-lab}
REDIS_PORT=${SWARMKEEPER_LAB_REDIS_PORT:-6379}
BUSYBOX_IMAGE=${SWARMKEEPER_LAB_IMAGE:-local/busybox:1}
DOCKER_SOCK=/var/run/docker.sock

log() { printf 'lab: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root (it installs packages and starts dockerd)"
    exit 1
  fi
}

install_missing() {
  local pkgs=()
  command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  [ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || pkgs+=(busybox-static)
  command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
}

docker_up() { docker info >/dev/null 2>&1; }

start_docker() {
  if docker_up; then
    return
  fi
  log "starting dockerd"
  # An engine killed with SIGKILL leaves its pid file behind, and dockerd refuses to start over it.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  # Without DOCKER_SERVICE_PREFER_OFFLINE_IMAGE every Swarm task first tries a registry that is not reachable here.
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nohup dockerd --host "unix://$DOCKER_SOCK" >"$STATE_DIR/dockerd.log" 2>&1 &
  echo $! >"$STATE_DIR/dockerd.pid"
  for _ in $(seq 1 60); do
    docker_up && return
    sleep 0.5
  done
  log "dockerd did not answer within 30 s; see $STATE_DIR/dockerd.log"
  tail -n 20 "$STATE_DIR/dockerd.log" >&2 || true
  exit 1
}

start_swarm() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ]; then
    log "initialising a single-node Swarm"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  fi
  # After an unclean engine stop the manager needs a moment to elect itself before it answers.
  for _ in $(seq 1 60); do
    docker node ls >/dev/null 2>&1 && return
    sleep 0.5
  done
  log "the Swarm manager did not become ready within 30 s"
  exit 1
}

redis_up() { redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; }

start_redis() {
  if redis_up; then
    return
  fi
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --pidfile "$STATE_DIR/redis.pid" --logfile "$STATE_DIR/redis.log" --dir "$STATE_DIR"
  touch "$STATE_DIR/redis.ours"
  for _ in $(seq 1 40); do
    redis_up && return
    sleep 0.25
  done
  log "redis did not answer; see $STATE_DIR/redis.log"
  exit 1
}

import_busybox() {
  if docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
    return
  fi
  log "importing $BUSYBOX_IMAGE from the static busybox"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in sh sleep httpd wget nc ls cat mkdir echo true false test env id touch rm; do
    ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  echo 'swarmkeeper lab' >"$root/www/index.html"
  tar -C "$root" -c . | docker import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - "$BUSYBOX_IMAGE" >/dev/null
  rm -rf "$root"
}

up() {
  need_root
  mkdir -p "$STATE_DIR"
  install_missing
  start_docker
  start_swarm
  start_redis
  import_busybox
  status
}

down() {
  if [ -f "$STATE_DIR/redis.ours" ]; then
    log "stopping redis-server"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -f "$STATE_DIR/redis.ours"
  fi
  if [ -f "$STATE_DIR/dockerd.pid" ]; then
    local pid
    pid=$(cat "$STATE_DIR/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping dockerd ($pid)"
      kill "$pid"
      for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
    fi
    rm -f "$STATE_DIR/dockerd.pid"
  fi
}

status() {
  if docker_up; then
    printf 'docker: %s, swarm %s\n' "$(docker version --format '{{.Server.Version}}')" \
      "$(docker info --format '{{.Swarm.LocalNodeState}}')"
  else
    echo 'docker: down'
  fi
  if redis_up; then
    printf 'redis: up on 127.0.0.1:%s\n' "$REDIS_PORT"
  else
    echo 'redis: down'
  fi
  if docker_up && docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
    echo "image: $BUSYBOX_IMAGE"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  image) import_busybox ;;
  *)
    echo "usage: $0 up|down|status|image" >&2
    exit 2
    ;;
esac
