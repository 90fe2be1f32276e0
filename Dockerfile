# swarmkeeper's image, for deployments with a registry:
#   docker build -t registry.example.org/swarmkeeper:0.1.0 . && docker push registry.example.org/swarmkeeper:0.1.0
# Machines without a registry (the lab) use scripts/build-local-image.sh instead, which makes an
# image with the same layout from the host's own node binary: same paths, user, entrypoint and
# file capabilities. deploy/stack.yml works with either.
#
# Trust boundary. The controller talks to the Docker socket of a manager, and access to that
# socket is root on every node of the Swarm: whoever controls this process controls the cluster.
# So does whoever can write to its Redis, since the desired state there decides what the
# controller does with the socket (the Redis password is a root-equivalent secret). Running as a
# non-root user does not change that; it narrows what a bug in the process can do to the rest of
# the container and to the files it mounts, which is still worth having.
#
# Socket access without root: the socket is owned by root and a `docker` group whose gid differs
# from host to host, so the image cannot know it. deploy/stack.yml runs the container as
# `10001:<that gid>` (SWARMKEEPER_DOCKER_GID; compose files for `docker stack deploy` have no
# `group_add`). With plain `docker run`, pass `--user 10001:$(stat -c %g /var/run/docker.sock)` or
# `--group-add $(stat -c %g /var/run/docker.sock)`.

ARG NODE_IMAGE=node:22-slim

# --- 1: compile -------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build

# --- 2: production dependencies only ------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: nothing here needs a native build (ssh2, under dockerode, falls back to pure
# JavaScript), and install scripts are code from the registry running at build time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- 3: runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE}

# The service user. Home folders are owned by the notebook user (1000:100), so the controller,
# while not root, must still create a folder under the NFS export, chown it and write the e-mail
# file inside it: node gets exactly CHOWN, DAC_OVERRIDE and FOWNER as file capabilities. They only
# take effect when the container's bounding set holds them (Docker's default set does;
# deploy/stack.yml drops every other capability). A container started with `--cap-drop ALL` and
# without those three cannot exec node at all ("operation not permitted"), and with
# no-new-privileges node runs without them (home folders then fail with EPERM).
# npm, npx, corepack and yarn go: nothing runs them here, and they would inherit the capabilities.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends libcap2-bin; \
    setcap 'cap_chown,cap_dac_override,cap_fowner=ep' /usr/local/bin/node; \
    apt-get purge -y --auto-remove libcap2-bin; \
    rm -rf /var/lib/apt/lists/*; \
    rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-*; \
    rm -f /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg; \
    groupadd --system --gid 10001 swarmkeeper; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin swarmkeeper

# HomeFolders with `quota.driver: xfs` also need xfs_quota (xfsprogs) and CAP_SYS_ADMIN, which this
# image does not grant: see README.md, "Deploy on a real Swarm".

WORKDIR /app
ENV NODE_ENV=production
# Root owns the app; the service user only reads it.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
COPY package.json ./

USER 10001:10001
EXPOSE 9464

# Liveness: the process serves HTTP. Assumes SWARMKEEPER_HTTP_ADDR's default port 9464; override
# the healthcheck when you change it. There is no curl in the slim image, so node's fetch does it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/node", "-e", "fetch('http://127.0.0.1:9464/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM (the default stop signal) drains in-flight work for up to 20 s and releases the leader
# lease: give the container a stop timeout above that (deploy/stack.yml: stop_grace_period 30s).
ENTRYPOINT ["/usr/local/bin/node", "/app/bin/swarmkeeper.js"]
CMD ["run"]

LABEL org.opencontainers.image.title="swarmkeeper" \
      org.opencontainers.image.description="Keeps a JupyterHub deployment on Docker Swarm at the desired state held in Redis" \
      org.opencontainers.image.licenses="BSD-3-Clause"
