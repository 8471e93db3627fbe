# syntax=docker/dockerfile:1
# One image with the three binaries: authz-server, resource-server and mcp-stack.
# Fully qualified names: podman does not resolve short names to Docker Hub by default.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The crate registry and the target directory live in cache mounts, so editing a source
# file rebuilds only the crates it touches instead of fetching and compiling every
# dependency again. The target directory is not part of the layer: copy the binaries out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p authz-server -p resource-server -p mcp-stack \
    && mkdir -p /out \
    && cp target/release/authz-server target/release/resource-server target/release/mcp-stack /out/

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
# Healthchecks call /readyz with this script (bash only: the slim image has no curl).
COPY deploy/healthcheck /usr/local/bin/mcp-healthcheck
COPY --from=build /out/ /usr/local/bin/
RUN useradd --system --home /var/lib/mcp mcp && mkdir -p /var/lib/mcp && chown mcp /var/lib/mcp
USER mcp
WORKDIR /var/lib/mcp
ENTRYPOINT []
CMD ["authz-server", "serve"]
