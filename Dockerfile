# tokengate container image: a Rust builder stage, then a small Debian runtime.
#
#   docker build -t tokengate .
#   docker run -d --name tokengate -e TOKENGATE_NAS_SECRET=... \
#     -p 1812:1812/udp -v tokengate-data:/var/lib/tokengate tokengate
#
# The image runs as the unprivileged user `tokengate` with the configuration in
# /etc/tokengate/tokengate.toml (mount your own over it) and the SQLite database and master key
# in the /var/lib/tokengate volume. `docker kill -s HUP` reloads the configuration; `docker stop`
# sends SIGTERM, which answers requests in flight and flushes writes before exiting.
# What every COPY below takes from the build context is checked by tests/it/deploy.rs.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
# The workspace manifest names bench/ as a member, so it comes along; fuzz/ is outside it.
COPY Cargo.toml Cargo.lock build.rs ./
COPY bench ./bench
COPY src ./src
COPY migrations ./migrations
COPY docs ./docs
RUN cargo build --release --locked --bin tokengate \
 && strip target/release/tokengate

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 tokengate \
 && useradd --system --uid 10001 --gid tokengate --home-dir /var/lib/tokengate \
      --shell /usr/sbin/nologin tokengate \
 && mkdir -p /var/lib/tokengate /etc/tokengate \
 && chown tokengate:tokengate /var/lib/tokengate \
 && chmod 0700 /var/lib/tokengate
COPY --from=builder /src/target/release/tokengate /usr/local/bin/tokengate
COPY dictionaries /etc/tokengate/dictionaries
COPY deploy/docker/tokengate.toml /etc/tokengate/tokengate.toml
ENV TOKENGATE_CONFIG=/etc/tokengate/tokengate.toml
VOLUME ["/var/lib/tokengate"]
# RADIUS authentication (UDP), TACACS+ (TCP), metrics and health (HTTP, [metrics] listen).
EXPOSE 1812/udp 49/tcp 9812/tcp
# Liveness from /healthz on the metrics listener, with bash's /dev/tcp (no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9812 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
USER tokengate
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["serve"]
