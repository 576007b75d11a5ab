# shellcheck shell=bash disable=SC2034  # the settings are used by the scripts that source this file
# Shared settings and helpers of the lab scripts; sourced, never run.

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$LAB_DIR")"
LAB_CACHE="${MEMTUNE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memtune/lab}"
LAB_RUN="${MEMTUNE_LAB_RUN:-$LAB_CACHE/run}"
LAB_KEY="$LAB_CACHE/ssh/id_ed25519"
LAB_FLEET="${MEMTUNE_LAB_FLEET:-$LAB_DIR/fleet.conf}"
LAB_INVENTORY="${MEMTUNE_LAB_INVENTORY:-$REPO_DIR/inventories/lab/hosts.yml}"
LAB_PORT_BASE="${MEMTUNE_LAB_PORT_BASE:-2250}"
LAB_BOOT_TIMEOUT="${MEMTUNE_LAB_BOOT_TIMEOUT:-420}"

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Install the Debian packages that provide the given commands, when any is missing.
# Arguments are command:package pairs, e.g. qemu-img:qemu-utils.
require_commands() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" \
            >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "missing host packages: ${missing[*]} (install them with: apt-get install ${missing[*]})"
    fi
    log "installing missing host packages: ${missing[*]}"
    apt-get update -q >&2 || die "apt-get update failed; missing host packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || die "could not install host packages: ${missing[*]}"
}

# qemu_numa_args NODE... : print the -smp, -m and NUMA arguments for nodes given as MiB@cpus.
qemu_numa_args() {
    local id=0 node mib cpus total=0 vcpus=0 first last
    local -a args=()
    for node in "$@"; do
        [[ $node =~ ^[0-9]+@([0-9]+(-[0-9]+)?)?$ ]] || die "NUMA node '$node' is not MiB@cpus"
        mib="${node%@*}" cpus="${node#*@}"
        total=$((total + mib))
        args+=(-object "memory-backend-ram,id=m$id,size=${mib}M")
        if [[ -n $cpus ]]; then
            first="${cpus%-*}" last="${cpus#*-}"
            vcpus=$((vcpus + last - first + 1))
            args+=(-numa "node,nodeid=$id,cpus=$cpus,memdev=m$id")
        else
            args+=(-numa "node,nodeid=$id,memdev=m$id")
        fi
        id=$((id + 1))
    done
    printf '%s\n' -smp "$vcpus" -m "${total}M" "${args[@]}"
}

lab_ssh_key() {
    if [[ ! -f $LAB_KEY ]]; then
        mkdir -p "$(dirname "$LAB_KEY")"
        ssh-keygen -q -t ed25519 -N '' -C memtune-lab -f "$LAB_KEY"
    fi
}

# The image's cache key: a hash of its build inputs (the build script holds the package list and every
# setting baked into the image) and of the lab's public key, which the image authorizes.
lab_image_key() {
    cat "$LAB_DIR/build-image.sh" "$LAB_KEY.pub" | sha256sum | cut -c1-16
}

lab_image_dir() { printf '%s/images/%s\n' "$LAB_CACHE" "$(lab_image_key)"; }

# Print the fleet, one guest a line: name|kernel line|kernel args|MiB@cpus... (fails on a malformed table).
fleet_lines() { python3 "$LAB_DIR/fleet.py" list --fleet "$LAB_FLEET"; }

ssh_opts() {
    printf '%s\n' -i "$LAB_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=10
}

# guest_ssh PORT COMMAND... : run a command on a guest as root.
guest_ssh() {
    local port=$1; shift
    local -a opts
    mapfile -t opts < <(ssh_opts)
    ssh "${opts[@]}" -p "$port" root@127.0.0.1 "$@"
}

# The pid in a guest's pidfile, if that process is still the QEMU started with this pidfile.
guest_pid() {
    local pidfile="$LAB_RUN/$1/qemu.pid" pid
    [[ -f $pidfile ]] || return 1
    pid="$(cat "$pidfile")"
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pidfile" || return 1
    printf '%s\n' "$pid"
}

# guests_running NAME... : whether the fleet's ssh config is there and each named guest's QEMU runs.
guests_running() {
    local name
    [[ -f $LAB_RUN/ssh_config ]] || return 1
    for name in "$@"; do
        guest_pid "$name" >/dev/null || return 1
    done
}

# A process that has not exited (a zombie has an empty command line).
process_running() { [[ -n "$(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null)" ]]; }

# Stop one guest by its pidfile: SIGTERM, then SIGKILL after 15 s. Never by process name.
stop_guest() {
    local name=$1 pid i
    if pid="$(guest_pid "$name")"; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            process_running "$pid" || break
            sleep 0.5
        done
        if process_running "$pid"; then
            log "$name: still running after SIGTERM, sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
        log "$name: stopped (pid $pid)"
    fi
    rm -f "$LAB_RUN/$name/qemu.pid"
}

stop_all_guests() {
    local dir
    for dir in "$LAB_RUN"/*/; do
        [[ -f $dir/qemu.pid ]] && stop_guest "$(basename "$dir")"
    done
    return 0
}
