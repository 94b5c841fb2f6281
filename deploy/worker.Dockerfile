# syntax=docker/dockerfile:1
# The worker image: sluice-worker, plus sluice-dlq (list and replay dead
# letters: `kubectl exec deploy/worker -- sluice-dlq list`) and sluice-db
# (package schema) for the migration Job, on distroless (glibc, CA
# certificates, no shell), running as uid 65532. Build from the repository
# root:
#
#   docker build -f deploy/worker.Dockerfile -t sluice-worker:0.1.0 .
#
# (nerdctl build takes the same arguments.) docs/operations.md, "Images".

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p worker --bin sluice-worker --bin sluice-dlq -p schema --bin sluice-db \
 && install -D -m 0755 target/release/sluice-worker /out/sluice-worker \
 && install -D -m 0755 target/release/sluice-dlq /out/sluice-dlq \
 && install -D -m 0755 target/release/sluice-db /out/sluice-db

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sluice-worker /out/sluice-dlq /out/sluice-db /usr/local/bin/
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/sluice-worker"]
