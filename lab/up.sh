#!/usr/bin/env bash
# Start the QEMU fleet of lab/fleet.conf from fresh overlays, wait for ssh and write the inventory.
#
#   lab/up.sh
#
# Builds the image first when the cache lacks it. Any guest already running is stopped and reset. On any
# failure every guest is stopped; a guest that never answers ssh is reported with its serial console.
set -euo pipefail
# shellcheck source=lab/common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require_commands qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils ssh:openssh-client \
    ssh-keygen:openssh-client
"$LAB_DIR/build-image.sh"
image="$(lab_image_dir)"

on_exit() {
    local rc=$?
    if ((rc != 0)); then
        log "start failed (exit $rc): stopping all guests"
        stop_all_guests
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

kernel_dir() {
    local line=$1
    if [[ -d $image/kernels/$line ]]; then
        printf '%s\n' "$image/kernels/$line"
    else
        local lines=("$image"/kernels/*/)
        log "WARNING: the image has no kernel line $line; using $(basename "${lines[0]}")"
        printf '%s\n' "${lines[0]%/}"
    fi
}

start_guest() {
    local name=$1 line=$2 kernel_args=$3 port=$4; shift 4
    local dir="$LAB_RUN/$name" kdir numa_args
    local -a numa
    kdir="$(kernel_dir "$line")"
    numa_args="$(qemu_numa_args "$@")"
    mapfile -t numa <<<"$numa_args"
    rm -rf "$dir"
    mkdir -p "$dir"
    port_in_use "$port" && die "$name: port 127.0.0.1:$port is already in use (set MEMTUNE_LAB_PORT_BASE)"
    qemu-img create -q -f qcow2 -b "$image/base.qcow2" -F qcow2 "$dir/overlay.qcow2"
    qemu-system-x86_64 -name "$name" -accel tcg,tb-size=256 -cpu max "${numa[@]}" \
        -nodefaults -no-user-config -display none -monitor none -serial "file:$dir/console.log" \
        -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 panic=1 systemd.hostname=$name $kernel_args" \
        -drive "file=$dir/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe" \
        -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=net0 \
        -pidfile "$dir/qemu.pid" -daemonize
    printf '%s\n' "$port" >"$dir/port"
    printf '%s\n' "$(cat "$kdir/release")" >"$dir/kernel"
    log "$name: started (pid $(cat "$dir/qemu.pid"), ssh 127.0.0.1:$port, kernel $(cat "$dir/kernel"), $*)"
}

# Wait until every guest answers ssh; on time-out show the console of each guest that did not.
wait_for_ssh() {
    local start=$SECONDS name pending=("$@") still
    while ((${#pending[@]} > 0)); do
        still=()
        for name in "${pending[@]}"; do
            guest_pid "$name" >/dev/null || {
                log "$name: QEMU exited; last console lines:"
                tail -n 40 "$LAB_RUN/$name/console.log" >&2 || true
                die "$name: QEMU exited before ssh answered"
            }
            if guest_ssh "$(cat "$LAB_RUN/$name/port")" true 2>/dev/null; then
                printf '%s\n' $((SECONDS - start)) >"$LAB_RUN/$name/boot_seconds"
                log "$name: ssh up after $((SECONDS - start)) s"
                if grep -q "Kernel panic - not syncing" "$LAB_RUN/$name/console.log"; then
                    log "WARNING: $name: its kernel panicked while booting and rebooted (panic=1); see $LAB_RUN/$name/console.log"
                fi
            else
                still+=("$name")
            fi
        done
        pending=("${still[@]+"${still[@]}"}")
        if ((${#pending[@]} > 0 && SECONDS - start > LAB_BOOT_TIMEOUT)); then
            for name in "${pending[@]}"; do
                log "$name: no ssh after ${LAB_BOOT_TIMEOUT} s; last console lines ($LAB_RUN/$name/console.log):"
                tail -n 40 "$LAB_RUN/$name/console.log" >&2 || true
            done
            die "guests never answered ssh: ${pending[*]}"
        fi
        ((${#pending[@]} > 0)) && sleep 3
    done
    return 0
}

fleet="$(fleet_lines)"
stop_all_guests
index=0
names=()
while IFS="|" read -r name line kernel_args nodes; do
    index=$((index + 1))
    # shellcheck disable=SC2086  # nodes is a list of MiB@cpus words
    start_guest "$name" "$line" "$kernel_args" $((LAB_PORT_BASE + index)) $nodes
    names+=("$name")
done <<<"$fleet"
wait_for_ssh "${names[@]}"
python3 "$LAB_DIR/fleet.py" inventory --fleet "$LAB_FLEET" --run "$LAB_RUN" --key "$LAB_KEY" \
    --output "$LAB_INVENTORY"
log "fleet up: ${names[*]}; inventory $LAB_INVENTORY"
