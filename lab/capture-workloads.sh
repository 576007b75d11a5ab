#!/usr/bin/env bash
# Run real workloads on lab guests and capture them with their processes (lab/capture_tree.py --processes)
# into tests/fixtures/hosts/<tree>/, so the workload trees can be made again (issue 18).
#
#   lab/capture-workloads.sh [SCENE...]     (default: every scene; `make lab-capture-workloads` takes the
#                                            lab lock around it)
#
# Scenes (the guest each runs on -> the tree it writes):
#   databases   numa2 -> numa2-databases: PostgreSQL 15 under systemd (postgresql@15-main) and a second
#               cluster (pg_createcluster 15 second --start), Redis (redis-server.service), MariaDB
#               (mariadb.service); all from the image's Debian packages (lab/build-image.sh).
#   containers  small -> small-containers: Redis on the host (redis-server.service), and three "containers"
#               (see scene_containers) in the cgroups containerd+kubelet and Docker make with the systemd
#               cgroup driver, each process chrooted into an overlayfs root of its own.
#   v1          v1 -> v1-databases: a guest booted with systemd.unified_cgroup_hierarchy=0 (RAM and kernel as
#               small's; systemd 252 then mounts the v1 controllers and v2 at /sys/fs/cgroup/unified: hybrid):
#               PostgreSQL with MemoryAccounting=yes, Redis with MemoryAccounting=no (the guest still gives it
#               a memory cgroup of its own: its sibling slice has memory accounting), and a Redis in a
#               cgroupfs-driver Docker container (/docker/<id>) whose image's dpkg status says another
#               redis-server.
#
# The guests come from fresh overlays (lab/up.sh): a scene starts from the image as built. The fleet this
# script starts holds only the guests the scenes need and is stopped at the end; a running fleet that has
# all of them is used as it is and left running (a scene then runs on guests as they are), any other is
# stopped by lab/up.sh. Each tree is replaced whole. Run it under the lab's lock (make takes it).
set -euo pipefail
# shellcheck source=lab/common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FIXTURES="${MEMTUNE_LAB_FIXTURES:-$REPO_DIR/tests/fixtures/hosts}"
declare -A SCENE_GUEST=([databases]=numa2 [containers]=small [v1]=v1)
declare -A SCENE_TREE=([databases]=numa2-databases [containers]=small-containers [v1]=v1-databases)
# Guests that lab/fleet.conf does not have, as its lines: the v1 scene's guest boots on cgroup v1.
declare -A EXTRA_GUESTS=([v1]="v1 6.1 2048@0 systemd.unified_cgroup_hierarchy=0")

# Fixed names, so that a capture made again gives the same paths (the tests name them): the ids are the
# sha256 of a label, as a runtime's ids are 64 hex digits; the pod UID is a random UUID written down once.
POD_UID=6f1c2e9a-4b7d-4c3e-9f21-8a5d3c7b0e14
POD_REDIS_ID="$(printf 'memtune-lab pod redis' | sha256sum | cut -c1-64)"
DOCKER_REDIS_ID="$(printf 'memtune-lab docker redis' | sha256sum | cut -c1-64)"
DOCKER_PG_ID="$(printf 'memtune-lab docker postgres' | sha256sum | cut -c1-64)"
V1_REDIS_ID="$(printf 'memtune-lab cgroupfs docker redis' | sha256sum | cut -c1-64)"
V1_REDIS_VERSION=5:6.0.16-1+deb11u2   # the v1 container's image: an older Debian's redis-server package
POD_REDIS_VERSION=5:8.0.2-3        # the pod's image: a Debian-based one with another redis-server package
DOCKER_REDIS_VERSION=7.4.1         # the official image's REDIS_VERSION (it builds Redis from source)

guest() {  # guest NAME: run stdin as a bash script on the guest, as root
    ssh -F "$LAB_RUN/ssh_config" "$1" bash -euo pipefail -s
}

scene_databases() {
    guest "$1" <<'EOF'
systemctl start postgresql@15-main
pg_createcluster 15 second --start >/dev/null
systemctl start redis-server mariadb
for unit in postgresql@15-main postgresql@15-second redis-server mariadb; do
    systemctl is-active --quiet "$unit" || { echo "$unit is not active" >&2; exit 1; }
done
EOF
}

# The containers scene. No runtime can pull an image here (the guests reach no registry), so each
# "container" is made of what a runtime would make, with the tools the guest has:
#  - its root: an overlayfs mount (lowerdir = the guest's /, as an image layer; upperdir on a tmpfs, since
#    overlayfs refuses an upper layer inside its lower one) at /var/lib/memtune-lab/containers/<id>/rootfs,
#    with /dev bound in; the process runs chrooted into it (a runtime would also pivot_root in a mount
#    namespace of its own: from the host /proc/<pid>/exe then reads as the path inside the container, here
#    it reads as the host's path to the merged root);
#  - its cgroup: a transient systemd scope made by `systemd-run --scope` with Delegate=yes, the D-Bus call
#    (StartTransientUnit) runc's systemd cgroup driver makes for containerd and Docker.
# The shapes (read in the projects' sources, not copied):
#  - kubelet's systemd driver (kubernetes pkg/kubelet/cm/cgroup_manager_linux.go, CgroupName.ToSystemd):
#    pod {kubepods, burstable, pod<uid>} -> kubepods.slice/kubepods-burstable.slice/
#    kubepods-burstable-pod<uid, "-" as "_">.slice; systemd's slice names nest by "-", so the scope's
#    --slice=kubepods-burstable-pod<uid>.slice makes all three levels;
#  - containerd's CRI plugin with SystemdCgroup = true names the container's scope cri-containerd-<id>.scope
#    in the pod's slice (kubelet's SystemdPathPrefixOfRuntime: containerd -> "cri-containerd");
#  - Docker with the systemd driver: cgroup parent system.slice, scope docker-<id>.scope (moby's
#    "system.slice:docker:<id>" cgroups path).
# What runs:
#  - pod Burstable $POD_UID, container $POD_REDIS_ID: redis-server as user redis; the image's
#    /var/lib/dpkg/status (upper layer) says redis-server $POD_REDIS_VERSION, the host's says Debian 12's.
#  - Docker $DOCKER_REDIS_ID: the official Redis image's shape: no redis-server package in its dpkg status,
#    REDIS_VERSION=$DOCKER_REDIS_VERSION in its environment (and a REDIS_PASSWORD the capture must drop).
#  - Docker $DOCKER_PG_ID: postgres -D /var/lib/postgresql/data (the official image's PGDATA), a cluster
#    initdb made in the container's upper layer: that PG_VERSION exists only through the container's root.
scene_containers() {
    {
        printf '%s=%q\n' POD_UID "$POD_UID" POD_REDIS_ID "$POD_REDIS_ID" DOCKER_REDIS_ID "$DOCKER_REDIS_ID" \
            DOCKER_PG_ID "$DOCKER_PG_ID" POD_REDIS_VERSION "$POD_REDIS_VERSION" \
            DOCKER_REDIS_VERSION "$DOCKER_REDIS_VERSION"
        declare -f container_root container_start
        cat <<'EOF'
systemctl start redis-server
systemctl is-active --quiet redis-server

root="$(container_root "$POD_REDIS_ID" 64m)"
sed -i "/^Package: redis-server\$/,/^\$/s/^Version: .*/Version: $POD_REDIS_VERSION/" "$root/var/lib/dpkg/status"
container_start "$POD_REDIS_ID" "kubepods-burstable-pod${POD_UID//-/_}.slice" cri-containerd \
    --userspec=redis:redis "$root" /usr/bin/redis-server --port 6380 --bind 127.0.0.1 --save "" \
    --dir /tmp --daemonize no

root="$(container_root "$DOCKER_REDIS_ID" 64m)"
sed -i '/^Package: redis-server$/,/^$/d' "$root/var/lib/dpkg/status"
container_start "$DOCKER_REDIS_ID" system.slice docker \
    --userspec=redis:redis "$root" /usr/bin/env REDIS_VERSION="$DOCKER_REDIS_VERSION" \
    REDIS_PASSWORD=lab-secret /usr/bin/redis-server --port 6381 --bind 127.0.0.1 --save "" --dir /tmp \
    --daemonize no

root="$(container_root "$DOCKER_PG_ID" 256m)"
chroot --userspec=postgres:postgres "$root" /usr/bin/env LANG=C /usr/lib/postgresql/15/bin/initdb \
    -D /var/lib/postgresql/data >/dev/null
container_start "$DOCKER_PG_ID" system.slice docker \
    --userspec=postgres:postgres "$root" /usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/data \
    -p 5499 -k /tmp -c listen_addresses=
for _ in $(seq 60); do
    [[ -f $root/var/lib/postgresql/data/postmaster.pid ]] && exit 0
    sleep 1
done
echo "the container's postgres did not start" >&2
exit 1
EOF
    } | guest "$1"
}

# The v1 scene. Docker's cgroupfs driver (runc's fs cgroup manager) makes the container's directory
# /docker/<id> in every v1 hierarchy and writes the process into each one's cgroup.procs; done here by
# hand for the memory and systemd (name=systemd) hierarchies, the two the probe reads.
scene_v1() {
    {
        printf '%s=%q\n' V1_REDIS_ID "$V1_REDIS_ID" V1_REDIS_VERSION "$V1_REDIS_VERSION"
        declare -f container_root
        cat <<'EOF'
[[ -d /sys/fs/cgroup/memory ]] || { echo "not booted on cgroup v1: no /sys/fs/cgroup/memory" >&2; exit 1; }
systemctl set-property --runtime postgresql@15-main.service MemoryAccounting=yes
systemctl set-property --runtime redis-server.service MemoryAccounting=no
systemctl start postgresql@15-main redis-server
systemctl is-active --quiet postgresql@15-main redis-server

root="$(container_root "$V1_REDIS_ID" 64m)"
sed -i "/^Package: redis-server\$/,/^\$/s/^Version: .*/Version: $V1_REDIS_VERSION/" "$root/var/lib/dpkg/status"
for hierarchy in memory systemd; do
    mkdir -p "/sys/fs/cgroup/$hierarchy/docker/$V1_REDIS_ID"
done
setsid -f sh -c 'for h in memory systemd; do echo $$ >"/sys/fs/cgroup/$h/docker/$1/cgroup.procs"; done
    exec chroot --userspec=redis:redis "$2" /usr/bin/redis-server --port 6380 --bind 127.0.0.1 --save "" \
        --dir /tmp --daemonize no' sh "$V1_REDIS_ID" "$root" </dev/null >/dev/null 2>&1
for _ in $(seq 30); do
    grep -q . "/sys/fs/cgroup/memory/docker/$V1_REDIS_ID/cgroup.procs" && exit 0  # cgroup files have size 0
    sleep 1
done
echo "the cgroupfs container's redis did not start" >&2
exit 1
EOF
    } | guest "$1"
}

# container_root ID SIZE: mount the overlayfs root of container ID (its writable layer a tmpfs of SIZE)
# and print its path.
container_root() {
    local dir=/var/lib/memtune-lab/containers/$1
    mkdir -p "$dir/layer" "$dir/rootfs"
    mount -t tmpfs -o "size=$2" tmpfs "$dir/layer"
    mkdir -p "$dir/layer/upper/var/lib/dpkg" "$dir/layer/work"
    cp -a /var/lib/dpkg/status "$dir/layer/upper/var/lib/dpkg/status"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/layer/upper,workdir=$dir/layer/work" "$dir/rootfs"
    mount --rbind /dev "$dir/rootfs/dev"
    mount -t proc proc "$dir/rootfs/proc"
    printf '%s\n' "$dir/rootfs"
}

# container_start ID SLICE PREFIX CHROOT-ARGUMENTS...: run chroot with the arguments, detached, in the
# transient scope PREFIX-ID.scope of SLICE; wait until the scope is active.
container_start() {
    local id=$1 slice=$2 prefix=$3
    shift 3
    setsid -f systemd-run --quiet --scope --unit="$prefix-$id" --slice="$slice" -p Delegate=yes \
        chroot "$@" </dev/null >/dev/null 2>&1
    for _ in $(seq 30); do
        systemctl is-active --quiet "$prefix-$id.scope" && return 0
        sleep 1
    done
    echo "$prefix-$id.scope did not start" >&2
    return 1
}

capture() {  # capture GUEST TREE
    local tmp
    tmp="$(mktemp -d "$FIXTURES/.capture.XXXXXX")"
    sleep 3  # PostgreSQL's checkpointer, walwriter... are forked after the postmaster
    if ! ssh -F "$LAB_RUN/ssh_config" "$1" python3 - --processes <"$LAB_DIR/capture_tree.py" \
        | tar -x -C "$tmp"; then
        rm -rf "$tmp"
        die "$1: capture failed"
    fi
    rm -rf "${FIXTURES:?}/$2"
    mv "$tmp" "$FIXTURES/$2"
    log "$1: captured $(find "$FIXTURES/$2" -type f | wc -l) files into $FIXTURES/$2"
}

scenes=("$@")
[[ ${#scenes[@]} -gt 0 ]] || scenes=(databases containers v1)
needed=()
for scene in "${scenes[@]}"; do
    [[ -n ${SCENE_GUEST[$scene]:-} ]] || die "unknown scene '$scene' (known: ${!SCENE_GUEST[*]})"
    needed+=("${SCENE_GUEST[$scene]}")
done

if ! guests_running "${needed[@]}"; then
    fleet="$(mktemp)"
    trap '"$LAB_DIR/down.sh"; rm -f "$fleet"' EXIT
    # only the guests the scenes need, as lab/fleet.conf describes them
    grep -E "^($(IFS='|'; echo "${needed[*]}"))[[:space:]]" "$LAB_FLEET" >"$fleet" || true
    for name in "${needed[@]}"; do
        [[ -z ${EXTRA_GUESTS[$name]:-} ]] || printf '%s\n' "${EXTRA_GUESTS[$name]}" >>"$fleet"
    done
    MEMTUNE_LAB_FLEET="$fleet" "$LAB_DIR/up.sh"
fi

for scene in "${scenes[@]}"; do
    name="${SCENE_GUEST[$scene]}"
    log "$name: setting up scene $scene"
    "scene_$scene" "$name"
    capture "$name" "${SCENE_TREE[$scene]}"
done
