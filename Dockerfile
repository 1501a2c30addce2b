# syntax=docker/dockerfile:1
#
# kubefold's container image: the operator (ENTRYPOINT) and the kubectl
# plugin, on nothing but the shared libraries they load.
#
#   docker build -t kubefold:dev .
#
# Two stages:
#   build    Debian 12: the project's packages, a Release build of the two
#            binaries, then scripts/assemble-runtime.sh /runtime.
#   runtime  FROM scratch + that /runtime directory, run as 65532:65532.
#
# The runtime stage adds no file of its own: the image's file set IS the
# directory scripts/assemble-runtime.sh assembles. tests/image/runtime_test.sh
# (ctest -R image_runtime_test) assembles the same directory from the build
# tree and runs kubefold in it under chroot as 65532 with only a Pod's
# environment, so it checks this image without a Docker engine. See
# docs/image.md.

ARG DEBIAN_IMAGE=debian:12-slim

# ---------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build

WORKDIR /src

# Packages first, in their own layer: it is rebuilt only when the package
# list changes. scripts/install-deps.sh installs what the whole project
# needs (tests and benchmarks included), which is more than the two
# binaries use. It is used as it is on purpose: configuring the project
# needs the test tree's packages too (Boost.Test is required at the top
# level and tests/ is always configured, with tools its CMakeLists require),
# and one list means this stage builds with exactly what CI builds with.
# None of it reaches the runtime stage. ca-certificates is not in that list
# (nothing there needs it); assemble-runtime.sh copies its bundle.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && bash scripts/install-deps.sh \
 && rm -rf /var/lib/apt/lists/*

COPY . .

# Release, only the two binaries (there is no option to leave the tests out
# of the configuration, but nothing forces building them). ccache keeps its
# cache in a BuildKit cache mount across builds; the image gets none of it.
# assemble-runtime.sh strips the copies it takes and fails when a library is
# missing.
# .git is not in the build context: the commit comes in as a build arg
# (docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .).
ARG GIT_COMMIT=unknown
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -G Ninja -S . -B /build -DCMAKE_BUILD_TYPE=Release -DKUBEFOLD_GIT_COMMIT=${GIT_COMMIT} \
 && cmake --build /build --target kubefold kubectl-kubefold \
 && bash scripts/assemble-runtime.sh /runtime /build

# ---------------------------------------------------------------------------
FROM scratch AS runtime

ARG KUBEFOLD_VERSION=0.5.0
LABEL org.opencontainers.image.title="kubefold" \
      org.opencontainers.image.description="Kubernetes multi-cluster operator: a versioned map of every member cluster's workloads, failover by policy, audits with before/after snapshots" \
      org.opencontainers.image.version="${KUBEFOLD_VERSION}" \
      org.opencontainers.image.base.name="scratch"

# The binaries, their libraries and the loader, /etc/passwd and /etc/group
# (nonroot = 65532), the CA bundle, /tmp (1777; the chart mounts an
# emptyDir there). Owned by root, so user 65532 can write nowhere but /tmp.
COPY --from=build /runtime /

# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# metrics, health probes, query API (the defaults; the chart sets them).
EXPOSE 8080 8081 8082

ENTRYPOINT ["/usr/local/bin/kubefold"]
