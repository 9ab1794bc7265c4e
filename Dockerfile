# syntax=docker/dockerfile:1.7
# One image per service, from one parameterised Dockerfile:
#   docker build --build-arg SERVICE=ingress -t sluice-ingress .
# Multi-stage: a workspace pruned to the service and the packages it uses (turbo prune), built, then deployed
# with production dependencies only (pnpm deploy) onto a slim Node 24 image, run as the non-root "node" user with
# `node` directly under tini, so that SIGTERM reaches the process and the graceful shutdown runs.
ARG NODE_VERSION=24.21.0

FROM node:${NODE_VERSION}-bookworm-slim AS base
RUN npm install --global --no-audit --no-fund pnpm@10.34.9 turbo@2.11.11
WORKDIR /repo

FROM base AS pruned
ARG SERVICE
COPY . .
RUN turbo prune "@sluice/${SERVICE}" --docker --out-dir /pruned

FROM base AS build
ARG SERVICE
COPY --from=pruned /pruned/json/ .
RUN pnpm install --frozen-lockfile
COPY --from=pruned /pruned/full/ .
RUN turbo run build --filter="@sluice/${SERVICE}..." \
 && pnpm --filter "@sluice/${SERVICE}" deploy --prod --legacy /app

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
