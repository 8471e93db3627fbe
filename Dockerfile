# Builds the servers; the image runs the authorization server by default.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p authz-server

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/authz-server /usr/local/bin/authz-server
RUN useradd --system --home /var/lib/authz authz && mkdir -p /var/lib/authz && chown authz /var/lib/authz
USER authz
WORKDIR /var/lib/authz
ENV AUTHZ_BIND=0.0.0.0:8001
EXPOSE 8001
ENTRYPOINT ["authz-server"]
CMD ["serve"]
