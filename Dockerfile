# One image with the three binaries: authz-server, resource-server and mcp-stack.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p authz-server -p resource-server -p mcp-stack

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/authz-server /src/target/release/resource-server /src/target/release/mcp-stack /usr/local/bin/
RUN useradd --system --home /var/lib/mcp mcp && mkdir -p /var/lib/mcp && chown mcp /var/lib/mcp
USER mcp
WORKDIR /var/lib/mcp
ENTRYPOINT []
CMD ["authz-server", "serve"]
