# sqlraftd container image: FROM scratch, one static binary, non-root.
#
# No base image is pulled: the binary is built on the host first, then copied.
# Build (from the repository root; needs Go and gcc with a static libc, which
# glibc's libc.a provides on Debian/Ubuntu):
#
#   CGO_ENABLED=1 go build -trimpath \
#     -tags 'netgo osusergo sqlite_omit_load_extension sqlite_preupdate_hook' \
#     -ldflags '-s -w -linkmode external -extldflags "-static"' \
#     -o sqlraftd ./cmd/sqlraftd
#   docker build -t sqlraft:dev .
#
# .dockerignore limits the build context to ./sqlraftd and deploy/docker/rootfs.
# Run one node (the advertised addresses must be reachable by peers/clients;
# without the advertise flags a node listening on 0.0.0.0 advertises its
# hostname, here sqlraft-0). The node ID (default: the hostname) is recorded
# on the volume on first start and kept when the container is recreated:
#
#   docker run -d --name sqlraft-0 --hostname sqlraft-0 -p 6001:6001 \
#     -v sqlraft-0-data:/var/lib/sqlraft sqlraft:dev \
#     --grpc-addr 0.0.0.0:6001 --raft-addr 0.0.0.0:6002 \
#     --grpc-advertise sqlraft-0:6001 --raft-advertise sqlraft-0:6002 \
#     --data-dir /var/lib/sqlraft/data
FROM scratch

# /etc/passwd and /etc/group name the numeric user; the volume directory is
# owned by it so a fresh named volume (which copies the image's ownership) is
# writable.
COPY deploy/docker/rootfs/etc/ /etc/
COPY --chown=65532:65532 deploy/docker/rootfs/var/lib/sqlraft/ /var/lib/sqlraft/
COPY sqlraftd /sqlraftd

USER 65532:65532
WORKDIR /var/lib/sqlraft
VOLUME ["/var/lib/sqlraft"]

# 6001: gRPC client API (DatabaseService, ClusterService, health, reflection).
# 6002: Raft traffic between nodes.
EXPOSE 6001 6002

STOPSIGNAL SIGTERM
ENTRYPOINT ["/sqlraftd"]
CMD ["--grpc-addr", "0.0.0.0:6001", "--raft-addr", "0.0.0.0:6002", "--data-dir", "/var/lib/sqlraft/data"]
