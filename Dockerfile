# Block Buster agent container: built on Debian 12, run as a non-root user. The guide's commands:
#   docker build -t block-buster .
#   docker run -d -p 5000:5000 -p 5001:5001 -p 5002:5002 -p 4173:4173 \
#     -e THEBLOCK_RPC_URL=http://node:9933 -e THEBLOCK_WS_URL=ws://node:9944 \
#     --name block-buster block-buster
# (4173 is the web dashboard; the guide's Python server served it apart.) tests/packaging/
# dockerfile_lint.sh checks this file where no container engine runs.
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake make g++ pkg-config libpoco-dev libsqlite3-dev zlib1g-dev libboost-dev \
      libyaml-cpp-dev prometheus-cpp-dev dpkg-dev file \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DBB_BUILD_TESTS=OFF -DBB_BUILD_DEVNODE=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cd /build && cpack -G DEB

FROM debian:12
COPY --from=build /build/blockbuster-agent_*.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/blockbuster-agent_*.deb curl \
 && rm -rf /var/lib/apt/lists/* /tmp/*.deb \
 && useradd --system --home-dir /var/lib/block-buster --create-home blockbuster
USER blockbuster
# The guide's environment variables configure it; in a container every listener must bind all
# addresses to be reachable through the published ports.
ENV BLOCK_BUSTER_HTTP_HOST=0.0.0.0 BLOCK_BUSTER_WS_HOST=0.0.0.0 BLOCK_BUSTER_WEB_HOST=0.0.0.0 \
    HOME=/var/lib/block-buster
EXPOSE 5000 5001 5002 4173
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:5000/health >/dev/null || exit 1
ENTRYPOINT ["/usr/bin/blockbuster-agent"]
CMD ["--config", "/etc/block-buster/config.yaml"]
