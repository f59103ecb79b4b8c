# callwatch in a container. UNTESTED here: no container engine runs on
# the machines this project is built and tested on (docs/install.md).
# Build: docker build -t callwatch .
# Run:   docker run -p 9464:9464 -p 9465:9465 -v callwatch-data:/var/lib/callwatch callwatch
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/callwatch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/callwatch --shell /usr/sbin/nologin callwatch \
    && mkdir -p /var/lib/callwatch /etc/callwatch \
    && chown callwatch:callwatch /var/lib/callwatch
COPY --from=build /src/target/release/callwatch /usr/bin/callwatch
# Listen on every interface inside the container; publish the ports
# deliberately and set tokens in [auth] before exposing them.
COPY config/callwatch.toml /etc/callwatch/callwatch.toml
RUN sed -i 's/^http = "127.0.0.1:9464"/http = "0.0.0.0:9464"/; s/^ingest_tcp = "127.0.0.1:9465"/ingest_tcp = "0.0.0.0:9465"/' /etc/callwatch/callwatch.toml \
    && /usr/bin/callwatch check-config /etc/callwatch/callwatch.toml
USER callwatch
VOLUME /var/lib/callwatch
EXPOSE 9464 9465
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD curl -fsS http://127.0.0.1:9464/readyz >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/callwatch", "run", "--config", "/etc/callwatch/callwatch.toml", "--data-dir", "/var/lib/callwatch"]
