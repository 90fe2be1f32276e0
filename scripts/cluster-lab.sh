#!/usr/bin/env bash
# A separate multi-node Docker Swarm on this machine, for test/cluster (npm run test:cluster):
# one dockerd per network namespace, joined into one Swarm (node 1 manager, the others workers).
#   scripts/cluster-lab.sh up        create what is missing: bridge, namespaces, engines, Swarm, image, labels
#   scripts/cluster-lab.sh down      stop exactly what `up` recorded and remove namespaces, links, data
#   scripts/cluster-lab.sh status    print every node's engine and Swarm state
#   scripts/cluster-lab.sh start N   start node N's engine again if it is not running (after a kill -9)
#
# It never touches the main lab engine (/var/run/docker.sock) or its Swarm: every engine here has its
# own socket /var/run/docker-skcN.sock, data-root, exec-root, pidfile and docker0 subnet, and lives
# in network namespace skcN, 10.210.0.N on the host bridge skcbr0. Swarm overlays take their
# subnets from 10.211.0.0/16. The only traffic is between these namespaces.
#
# Why nsenter + unshare rather than `ip netns exec`: the engine needs a sysfs of its own network
# namespace (for /sys/class/net) but also the host's cgroup tree, which `ip netns exec` hides
# ("Devices cgroup isn't mounted"). A private mount namespace keeps the cgroups, remounts sysfs and
# holds every mount the engine makes, so nothing leaks into the host's mount table.
set -euo pipefail

STATE_DIR=${SWARMKEEPER_CLUSTER_STATE:-/var/lib/swarmkeeper-cluster}
NODES=${SWARMKEEPER_CLUSTER_NODES:-3}
BRIDGE=skcbr0
NET_PREFIX=10.210.0
ADDR_POOL=10.211.0.0/16
RULE_COMMENT=swarmkeeper-cluster-lab
LAB_SH="$(cd "$(dirname "$0")" && pwd)/lab.sh"

log() { printf 'cluster-lab: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

ns() { echo "skc$1"; }
sock() { echo "/var/run/docker-skc$1.sock"; }
addr() { echo "$NET_PREFIX.$1"; }
dk() {
  local n=$1
  shift
  docker -H "unix://$(sock "$n")" "$@"
}
engine_up() { dk "$1" info >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" = 0 ] || die 'must run as root (it creates network namespaces and starts dockerd)'
  for tool in dockerd docker ip iptables nsenter unshare; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: run scripts/lab.sh up first (it installs docker.io)"
  done
}

# The host side: one bridge, and an ACCEPT for traffic across it. The main dockerd sets the FORWARD
# policy to DROP and bridged frames pass through iptables (bridge-nf-call-iptables), so without the
# rule the namespaces could not reach each other. The rule matches this bridge only.
host_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    touch "$STATE_DIR/bridge"
  fi
  ip link set "$BRIDGE" up
  if ! iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_COMMENT" -j ACCEPT 2>/dev/null; then
    iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_COMMENT" -j ACCEPT
    touch "$STATE_DIR/iptables"
  fi
}

node_network() {
  local n=$1 name
  name=$(ns "$n")
  if ! ip netns list | grep -qw "$name"; then
    ip netns add "$name"
    touch "$STATE_DIR/netns-$n"
  fi
  if ! ip -n "$name" link show eth0 >/dev/null 2>&1; then
    ip link del "${name}h" 2>/dev/null || true
    ip link add "${name}h" type veth peer name "${name}n"
    ip link set "${name}n" netns "$name"
    ip -n "$name" link set "${name}n" name eth0
    ip -n "$name" addr add "$(addr "$n")/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
  fi
  ip link set "${name}h" master "$BRIDGE" up
}

start_engine() {
  local n=$1 name cg
  if engine_up "$n"; then
    own_socket "$n"
    return
  fi
  name=$(ns "$n")
  cg="$STATE_DIR/cgroup-$n"
  mkdir -p "$cg" "/var/lib/docker-$name"
  log "starting dockerd in $name"
  # shellcheck disable=SC2016  # expanded by the inner shell
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nohup nsenter --net="/var/run/netns/$name" \
    unshare -m --propagation private sh -c '
      mount --rbind /sys/fs/cgroup "$1"
      umount -l /sys
      mount -t sysfs sysfs /sys
      mount --rbind "$1" /sys/fs/cgroup
      exec dockerd --host "unix://$2" --data-root "$3" --exec-root "$4" --pidfile "$5" --bip "$6"' \
    sh "$cg" "$(sock "$n")" "/var/lib/docker-$name" "/var/run/docker-$name" "/var/run/docker-$name.pid" \
    "172.31.$((250 + n)).1/24" >>"$STATE_DIR/dockerd-$n.log" 2>&1 &
  # nsenter, unshare and sh each exec the next: this is dockerd's own pid.
  echo $! >"$STATE_DIR/dockerd-$n.pid"
  touch "$STATE_DIR/node-$n"
  for _ in $(seq 1 60); do
    if engine_up "$n"; then
      own_socket "$n"
      return
    fi
    sleep 0.5
  done
  tail -n 20 "$STATE_DIR/dockerd-$n.log" >&2 || true
  die "dockerd in $name did not answer within 30 s; see $STATE_DIR/dockerd-$n.log"
}

# A task that bind-mounts /var/run/docker.sock (the volume check job does) must reach its own
# node's engine, as on a real node, not the lab engine whose socket the shared filesystem has at
# that path. In the engine's private mount namespace its own socket is bound over that path; the
# host does not see it. A restart of the lab engine recreates its socket, which undoes the binding:
# `up` binds it again (an earlier binding is undone first, so they never stack).
own_socket() {
  local n=$1 pid
  pid=$(cat "$STATE_DIR/dockerd-$n.pid")
  if [ ! -S /var/run/docker.sock ]; then
    log "warning: no /var/run/docker.sock to bind node $n's socket over; its tasks cannot reach their engine"
    return
  fi
  # shellcheck disable=SC2016  # expanded by the inner shell
  nsenter --target "$pid" --mount sh -c \
    'while umount /var/run/docker.sock 2>/dev/null; do :; done; mount --bind "$1" /var/run/docker.sock' \
    sh "$(sock "$n")"
}

swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }
node_id() { dk "$1" info --format '{{.Swarm.NodeID}}'; }

wait_manager() {
  for _ in $(seq 1 60); do
    dk 1 node ls >/dev/null 2>&1 && return
    sleep 0.5
  done
  die 'the cluster manager did not become ready within 30 s'
}

start_swarm() {
  if [ "$(swarm_state 1)" != active ]; then
    log "initialising the Swarm on $(addr 1)"
    dk 1 swarm init --advertise-addr "$(addr 1)" --listen-addr "$(addr 1):2377" \
      --default-addr-pool "$ADDR_POOL" >/dev/null
  fi
  wait_manager
  local token n id
  token=$(dk 1 swarm join-token -q worker)
  for n in $(seq 2 "$NODES"); do
    if [ "$(swarm_state "$n")" != active ]; then
      log "joining $(ns "$n") as a worker"
      dk "$n" swarm join --token "$token" --advertise-addr "$(addr "$n")" --listen-addr "$(addr "$n"):2377" \
        "$(addr 1):2377" >/dev/null
    fi
  done
  for n in $(seq 1 "$NODES"); do
    id=$(node_id "$n")
    wait_ready "$id"
    dk 1 node update --label-add "lab.node=n$n" "$id" >/dev/null
  done
}

wait_ready() {
  for _ in $(seq 1 60); do
    [ "$(dk 1 node inspect --format '{{.Status.State}}' "$1" 2>/dev/null)" = ready ] && return
    sleep 0.5
  done
  die "node $1 did not become ready within 30 s"
}

up() {
  need_root
  mkdir -p "$STATE_DIR"
  echo "$NODES" >"$STATE_DIR/nodes"
  host_network
  local n
  for n in $(seq 1 "$NODES"); do
    node_network "$n"
    start_engine "$n"
    DOCKER_HOST="unix://$(sock "$n")" bash "$LAB_SH" image
  done
  start_swarm
  status
}

# SIGTERM to every engine at once (each stops its containers, up to the 10 s stop timeout), then
# whatever is left: after a kill -9 the engine could not stop its containers, so they are ended
# through runc, and the engine's containerd and shims are found by the exec-root path in their
# command line, which only the processes this script started carry.
stop_engines() {
  local n pid pids=() runc_root exec_root
  for n in "$@"; do
    pid=$(cat "$STATE_DIR/dockerd-$n.pid" 2>/dev/null || true)
    # Only the engine this script started: the pid must still be a dockerd on node N's socket.
    if [ -n "$pid" ] && cmdline_of "$pid" | grep -qF -- "$(sock "$n")"; then
      log "stopping dockerd in $(ns "$n") ($pid)"
      kill "$pid"
      pids+=("$pid")
    fi
  done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  # Its containers and containerd go with it, except after a kill -9 (see above).
  for n in "$@"; do
    [ -f "$STATE_DIR/node-$n" ] || continue
    exec_root="/var/run/docker-$(ns "$n")"
    runc_root="$exec_root/runtime-runc/moby"
    if [ -d "$runc_root" ] && command -v runc >/dev/null 2>&1; then
      for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
        runc --root "$runc_root" kill -a "$id" KILL 2>/dev/null || true
      done
    fi
    for pid in $(processes_with "$exec_root/containerd/"); do
      kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$STATE_DIR/dockerd-$n.pid"
  done
}

cmdline_of() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# PIDs whose command line mentions the given path.
processes_with() {
  local dir
  for dir in /proc/[0-9]*; do
    cmdline_of "${dir#/proc/}" | grep -qF -- "$1" && echo "${dir#/proc/}"
  done
  return 0
}

down() {
  need_root
  [ -d "$STATE_DIR" ] || return 0
  local nodes n name
  nodes=$(cat "$STATE_DIR/nodes" 2>/dev/null || echo "$NODES")
  # shellcheck disable=SC2046
  stop_engines $(seq 1 "$nodes")
  for n in $(seq 1 "$nodes"); do
    name=$(ns "$n")
    if [ -f "$STATE_DIR/netns-$n" ]; then
      ip netns del "$name" 2>/dev/null || true
      ip link del "${name}h" 2>/dev/null || true
      rm -f "$STATE_DIR/netns-$n"
    fi
    if [ -f "$STATE_DIR/node-$n" ]; then
      rm -rf "/var/lib/docker-$name" "/var/run/docker-$name" "$(sock "$n")" "/var/run/docker-$name.pid"
      rm -f "$STATE_DIR/node-$n"
    fi
    rm -rf "$STATE_DIR/cgroup-$n"
  done
  if [ -f "$STATE_DIR/iptables" ]; then
    while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$RULE_COMMENT" -j ACCEPT 2>/dev/null; do :; done
    rm -f "$STATE_DIR/iptables"
  fi
  if [ -f "$STATE_DIR/bridge" ]; then
    ip link del "$BRIDGE" 2>/dev/null || true
    rm -f "$STATE_DIR/bridge"
  fi
  rm -rf "$STATE_DIR"
  log 'down'
}

status() {
  local nodes n
  nodes=$(cat "$STATE_DIR/nodes" 2>/dev/null || echo "$NODES")
  for n in $(seq 1 "$nodes"); do
    if engine_up "$n"; then
      printf '%s: %s engine up, swarm %s, %s\n' "$(ns "$n")" "$(sock "$n")" "$(swarm_state "$n")" "$(addr "$n")"
    else
      printf '%s: %s engine down\n' "$(ns "$n")" "$(sock "$n")"
    fi
  done
  if engine_up 1; then
    dk 1 node ls --format '{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' 2>/dev/null || true
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  start)
    need_root
    [ -n "${2:-}" ] || die 'usage: start N'
    start_engine "$2"
    ;;
  *)
    echo "usage: $0 up|down|status|start N" >&2
    exit 2
    ;;
esac
