#!/usr/bin/env bash
# Builds swarmkeeper's two container images WITHOUT a registry, from this machine's own binaries:
#
#   ${SWARMKEEPER_IMAGE:-local/swarmkeeper:dev}    node + its libraries + the built app (/app)
#   ${SWARMKEEPER_REDIS_IMAGE:-local/redis:dev}     redis-server + redis-cli + their libraries
#
# Each is a root filesystem assembled in a temp folder and loaded with `docker import`, so no base
# image is pulled. For deployments with a registry, build the Dockerfile instead; these images
# behave the same way (same paths, users, entrypoint), which is what deploy/stack.yml relies on.
#
# Idempotent: an image whose inputs (binaries, package-lock.json, dist/, bin/, this script) are
# unchanged is kept, recognised by its io.swarmkeeper.build-hash label.
# SWARMKEEPER_FORCE_REBUILD=1 rebuilds anyway. Prints the image names on stdout. Arguments pick the
# images (`controller`, `redis`; both by default); DOCKER_HOST picks the engine that gets them.
#
# Needs: docker (a running engine), node and npm (the npm registry is used for `npm ci`),
# redis-server and redis-cli (scripts/lab.sh up installs them), ldd, tar, setcap.
set -euo pipefail
cd "$(dirname "$0")/.."

CONTROLLER_IMAGE=${SWARMKEEPER_IMAGE:-local/swarmkeeper:dev}
REDIS_IMAGE=${SWARMKEEPER_REDIS_IMAGE:-local/redis:dev}
FORCE=${SWARMKEEPER_FORCE_REBUILD:-0}
# Which images: the arguments (controller, redis), both by default.
WHAT=("$@")
[ $# -gt 0 ] || WHAT=(controller redis)
for what in "${WHAT[@]}"; do
  case $what in
    controller | redis) ;;
    *)
      printf 'usage: %s [controller] [redis]\n' "$0" >&2
      exit 2
      ;;
  esac
done

# Same ids as the Dockerfile (swarmkeeper) and as the official redis image (redis), so a stack file
# and existing volumes work with either image.
APP_UID=10001
REDIS_UID=999

log() { printf 'build-local-image: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH: $2"
}

need docker 'install Docker (scripts/lab.sh up does)'
need node 'install Node.js 20 or newer'
need npm 'install npm (it comes with Node.js)'
need redis-server 'install it: sudo bash scripts/lab.sh up, or apt-get install redis-server'
need redis-cli 'install it: apt-get install redis-tools (redis-server depends on it)'
need ldd 'install libc-bin'
need tar 'install tar'
need setcap 'install libcap2-bin'
need sha256sum 'install coreutils'
docker info >/dev/null 2>&1 || die 'the Docker engine does not answer (sudo bash scripts/lab.sh up starts one)'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarmkeeper-image.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# --- helpers -----------------------------------------------------------------------------------

# Every shared library `ldd` reports for a binary, the dynamic loader included, as absolute paths.
libraries_of() {
  local bin=$1 report
  report=$(ldd "$bin") || die "ldd failed on $bin (is it a dynamic ELF executable?)"
  if grep -q 'not found' <<<"$report"; then
    die "ldd reports missing libraries for $bin: $(grep 'not found' <<<"$report" | tr -s ' \t' ' ')"
  fi
  # "libx.so => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$report" | sort -u
}

# Copies a binary to <root>/usr/local/bin/<name> and its libraries to the same paths as on the host.
add_binary() {
  local root=$1 source=$2 name=$3 lib
  source=$(command -v "$source")
  install -D -m 0755 "$(readlink -f "$source")" "$root/usr/local/bin/$name"
  while IFS= read -r lib; do
    # -L: the file, not the symlink to it; --parents: keep /lib/x86_64-linux-gnu/... as the path.
    cp --parents -L "$lib" "$root/"
  done < <(libraries_of "$source")
}

# The files every image needs: users, name lookup, a writable /tmp.
add_base() {
  local root=$1 passwd=$2 group=$3
  mkdir -p "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n%s\n' "$passwd" >"$root/etc/passwd"
  printf 'root:x:0:\n%s\n' "$group" >"$root/etc/group"
  # glibc's getaddrinfo: the hosts file first, then DNS (Docker's embedded server in Swarm).
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# A hash of everything that ends up in an image, so an unchanged image is not rebuilt.
hash_inputs() {
  {
    sha256sum <"$0" # content only: the path it was called by must not matter
    for path in "$@"; do
      if [ -d "$path" ]; then
        find "$path" -type f -print0 | sort -z | xargs -0 -r sha256sum
      else
        sha256sum "$path"
      fi
    done
  } | sha256sum | cut -c1-16
}

image_hash() {
  docker image inspect --format '{{ index .Config.Labels "io.swarmkeeper.build-hash" }}' "$1" 2>/dev/null || true
}

# tar the root (numeric owners, file capabilities kept) into `docker import` with the given changes.
# The image the tag pointed at before is removed unless something still uses it, so rebuilds do not
# pile up untagged copies.
import_root() {
  local root=$1 image=$2 previous
  shift 2
  local changes=()
  for change in "$@"; do changes+=(--change "$change"); done
  previous=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  tar --numeric-owner --xattrs --xattrs-include='security.capability' -C "$root" -c . |
    docker import "${changes[@]}" - "$image" >/dev/null
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$image")" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
  fi
}

# --- the controller image ----------------------------------------------------------------------

build_controller() {
  local started=$SECONDS
  log "npm run build"
  npm run build --silent >&2 || die 'npm run build failed'
  [ -f dist/cli/main.js ] || die 'npm run build produced no dist/cli/main.js'

  local node_bin libs hash
  node_bin=$(readlink -f "$(command -v node)")
  libs=$(libraries_of "$node_bin" | tr '\n' ' ')
  # shellcheck disable=SC2086  # the library list is split on purpose
  hash=$(hash_inputs "$node_bin" $libs package.json package-lock.json dist bin)
  if [ "$FORCE" != 1 ] && [ "$(image_hash "$CONTROLLER_IMAGE")" = "$hash" ]; then
    log "$CONTROLLER_IMAGE is up to date ($hash)"
    return
  fi

  log "assembling $CONTROLLER_IMAGE from $node_bin ($(node --version))"
  local root=$WORK/controller
  mkdir -p "$root/app"
  add_base "$root" \
    "swarmkeeper:x:$APP_UID:$APP_UID:swarmkeeper:/nonexistent:/sbin/nologin" \
    "swarmkeeper:x:$APP_UID:"
  add_binary "$root" node node
  # What the Dockerfile grants too (see there): create home folders under the export, chown them
  # to the notebook user and write the e-mail file inside them, as the non-root user. Nothing else.
  setcap 'cap_chown,cap_dac_override,cap_fowner=ep' "$root/usr/local/bin/node"

  cp package.json package-lock.json "$root/app/"
  cp -R dist bin "$root/app/"
  log 'npm ci --omit=dev in the staged /app'
  (cd "$root/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
    die 'npm ci failed in the staged app (is the npm registry reachable?)'
  # Root owns the app; the service user only reads it.
  chmod -R a+rX,go-w "$root/app"

  import_root "$root" "$CONTROLLER_IMAGE" \
    'WORKDIR /app' \
    'ENV NODE_ENV=production' \
    'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    "USER $APP_UID:$APP_UID" \
    'EXPOSE 9464' \
    "LABEL io.swarmkeeper.build-hash=$hash" \
    'ENTRYPOINT ["/usr/local/bin/node","/app/bin/swarmkeeper.js"]' \
    'CMD ["run"]'
  rm -rf "$root"

  docker run --rm "$CONTROLLER_IMAGE" --help >/dev/null ||
    die "$CONTROLLER_IMAGE does not run: try docker run --rm $CONTROLLER_IMAGE --help"
  log "built $CONTROLLER_IMAGE in $((SECONDS - started)) s"
}

# --- the Redis image ---------------------------------------------------------------------------

build_redis() {
  local started=$SECONDS server cli libs hash
  server=$(readlink -f "$(command -v redis-server)")
  cli=$(readlink -f "$(command -v redis-cli)")
  libs=$( (libraries_of "$server" && libraries_of "$cli") | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086
  hash=$(hash_inputs "$server" "$cli" $libs)
  if [ "$FORCE" != 1 ] && [ "$(image_hash "$REDIS_IMAGE")" = "$hash" ]; then
    log "$REDIS_IMAGE is up to date ($hash)"
    return
  fi

  log "assembling $REDIS_IMAGE from $server ($(redis-server --version | awk '{print $3}'))"
  local root=$WORK/redis
  add_base "$root" \
    "redis:x:$REDIS_UID:$REDIS_UID:redis:/data:/sbin/nologin" \
    "redis:x:$REDIS_UID:"
  # Named redis-server: Debian's binary decides what to be from argv[0] (redis-check-aof etc.).
  add_binary "$root" redis-server redis-server
  add_binary "$root" redis-cli redis-cli
  # A new named volume mounted at /data starts as a copy of this folder, owner included.
  mkdir -p "$root/data"
  chown "$REDIS_UID:$REDIS_UID" "$root/data"
  chmod 0750 "$root/data"

  import_root "$root" "$REDIS_IMAGE" \
    'WORKDIR /data' \
    'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    "USER $REDIS_UID:$REDIS_UID" \
    'EXPOSE 6379' \
    "LABEL io.swarmkeeper.build-hash=$hash" \
    'CMD ["redis-server","--appendonly","yes","--dir","/data"]'
  rm -rf "$root"

  docker run --rm --entrypoint redis-server "$REDIS_IMAGE" --version >/dev/null ||
    die "$REDIS_IMAGE does not run: try docker run --rm $REDIS_IMAGE redis-server --version"
  log "built $REDIS_IMAGE in $((SECONDS - started)) s"
}

for what in "${WHAT[@]}"; do
  "build_$what"
  image=$([ "$what" = controller ] && echo "$CONTROLLER_IMAGE" || echo "$REDIS_IMAGE")
  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$image" >&2
  printf '%s\n' "$image"
done
