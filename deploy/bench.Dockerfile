# syntax=docker/dockerfile:1
# The bench image: `bench`, for rehearsal runs against a deployment's
# rehearsal round (manifests/overlays/rehearsal), on distroless (glibc, CA
# certificates, no shell), running as uid 65532. Build from the repository
# root:
#
#   docker build -f deploy/bench.Dockerfile -t sluice-bench:0.1.0 .
#
# (nerdctl build takes the same arguments.) docs/operations.md, "Rehearsals".

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p bench --bin bench \
 && install -D -m 0755 target/release/bench /out/bench

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bench /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/bench"]
