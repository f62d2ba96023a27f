# syntax=docker/dockerfile:1
# upload-guard container image.
#
#   docker build -t upload-guard .
#   docker run --read-only --cap-drop ALL --security-opt no-new-privileges \
#     -p 8080:8080 -e UPSTREAM_URL=http://uploader:5000 upload-guard
#
# The runtime image holds dist/, config/, vendor/ and the production dependencies only, runs as UID 10001,
# and writes nowhere but the spool volume /tmp/upload-guard, so it runs with a read-only root
# filesystem. Config: /app/config/container.yaml (deploy/docker/upload-guard.yaml); mount another
# file and point UPLOAD_GUARD_CONFIG at it. test/deploy/docker-install.test.ts replays the install
# steps below without a Docker engine.

ARG NODE_IMAGE=node:24-bookworm
ARG NODE_RUNTIME_IMAGE=node:24-bookworm-slim

# --- build: all dependencies, TypeScript -> dist/ ---
FROM ${NODE_IMAGE} AS builder
WORKDIR /src
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- production dependencies only, no install scripts (none of them needs one) ---
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# vendor/streamsearch: busboy's boundary search (package.json "overrides"), linked from node_modules
COPY vendor ./vendor
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime ---
FROM ${NODE_RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production \
    UPLOAD_GUARD_CONFIG=/app/config/container.yaml \
    UPSTREAM_URL=http://127.0.0.1:5000
WORKDIR /app
# Owned by root and not writable by the service user: the guard cannot change its own code.
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY vendor ./vendor
COPY --from=builder /src/dist ./dist
COPY config ./config
COPY deploy/docker/upload-guard.yaml ./config/container.yaml
# The spool dir is the one writable path; created before VOLUME so a fresh volume inherits the
# owner and mode.
RUN mkdir -p /tmp/upload-guard && chown 10001:10001 /tmp/upload-guard && chmod 0700 /tmp/upload-guard
VOLUME ["/tmp/upload-guard"]

USER 10001:10001
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--initial-old-space-size=128", "--max-semi-space-size=8", "/app/dist/cli.js"]
CMD ["serve"]
