# syntax=docker/dockerfile:1
# The gateway image: sluice-gateway on distroless (glibc, CA certificates,
# no shell), running as uid 65532. Build from the repository root:
#
#   docker build -f deploy/gateway.Dockerfile -t sluice-gateway:0.1.0 .
#
# (nerdctl build takes the same arguments.) docs/operations.md, "Images".

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target directory between builds; the
# binary is copied out because the cached target/ is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway --bin sluice-gateway \
 && install -D -m 0755 target/release/sluice-gateway /out/sluice-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sluice-gateway /usr/local/bin/sluice-gateway
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sluice-gateway"]
