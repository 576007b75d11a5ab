#!/usr/bin/env bash
# Build the lab's Debian 12 guest image (rootfs + two kernel lines) into the cache, unless it is there.
#
#   lab/build-image.sh [--force]
#
# Output, under $MEMTUNE_LAB_CACHE/images/<key>/ (key: hash of the build inputs, see lab_image_key):
#   base.qcow2                   ext4 root filesystem (the guests boot it through copy-on-write overlays)
#   kernels/<line>/{vmlinuz,initrd.img,release}   one directory per kernel line, e.g. 6.1 and 6.12
#   manifest                     what was built, from which mirror, how long it took
# The image is assembled in a temporary directory and moved into place only when complete.
set -euo pipefail
# shellcheck source=lab/common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SUITE=bookworm
IMAGE_SIZE=4G
NEEDED_FREE_KB=$((${MEMTUNE_LAB_MIN_FREE_MB:-5120} * 1024))
PACKAGES=systemd,systemd-sysv,udev,dbus,openssh-server,python3,iproute2,numactl,kmod,procps,initramfs-tools
# The workloads memtune detects and tunes, from Debian's packages. Installed but not started at boot: a test
# starts the one it needs (systemctl start postgresql@15-main, redis-server, mariadb).
WORKLOAD_PACKAGES=(postgresql redis-server mariadb-server)
WORKLOAD_UNITS=(postgresql.service redis-server.service mariadb.service)
INITRAMFS_MODULES=(virtio_pci virtio_blk virtio_net ext4)
# Kernel drivers no guest of the lab can use; pruned to keep the image small and quick to write.
PRUNED_MODULE_DIRS=(drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging
    drivers/bluetooth drivers/usb drivers/scsi sound net/wireless net/mac80211 net/bluetooth)

force=false
[[ ${1:-} == --force ]] && force=true

require_commands debootstrap:debootstrap qemu-img:qemu-utils mkfs.ext4:e2fsprogs ssh-keygen:openssh-client \
    findmnt:util-linux
lab_ssh_key
dest="$(lab_image_dir)"
if [[ -f $dest/manifest ]] && ! $force; then
    log "image up to date: $dest"
    exit 0
fi

mirror="$(python3 "$LAB_DIR/apt_mirror.py" --suite "$SUITE")" \
    || die "no apt source for $SUITE on this machine: add one to /etc/apt/sources.list(.d)"
mkdir -p "$LAB_CACHE/images"
free_kb="$(df --output=avail -k "$LAB_CACHE/images" | tail -1)"
((free_kb >= NEEDED_FREE_KB)) \
    || die "disk full: $((free_kb / 1024)) MiB free in $LAB_CACHE, the image build needs $((NEEDED_FREE_KB / 1024)) MiB"

work="$(mktemp -d "$LAB_CACHE/images/.build.XXXXXX")"
rootfs="$work/rootfs"
started=$SECONDS

unmount_rootfs() {
    if findmnt -rn "$rootfs/proc" >/dev/null 2>&1; then
        umount "$rootfs/proc" || umount -l "$rootfs/proc"
    fi
}

cleanup() {
    local rc=$?
    unmount_rootfs
    if findmnt -rn -o TARGET | grep -qF "$work"; then
        log "ERROR: something is still mounted under $work; not deleting it"
    else
        rm -rf "$work"
    fi
    if ((rc != 0)); then
        local avail
        avail="$(df --output=avail -k "$LAB_CACHE/images" | tail -1)"
        if ((avail < 512 * 1024)); then
            log "ERROR: the image build failed with the disk full ($((avail / 1024)) MiB free in $LAB_CACHE);" \
                "no image was left in the cache. Free some space and run it again."
        else
            log "ERROR: the image build failed (exit $rc); no image was left in the cache"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_root() { LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$rootfs" "$@"; }

log "debootstrap $SUITE (minbase) from $mirror"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

log "configuring apt and initramfs-tools"
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-backports main
EOF
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90lab"
sed -i 's/^MODULES=.*/MODULES=list/' "$rootfs/etc/initramfs-tools/initramfs.conf"
printf '%s\n' "${INITRAMFS_MODULES[@]}" >>"$rootfs/etc/initramfs-tools/modules"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"

log "installing the $SUITE kernel"
in_root apt-get update -q >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get update failed"; }
in_root apt-get install -y -q linux-image-amd64 >>"$work/apt.log" 2>&1 \
    || { tail -n 30 "$work/apt.log" >&2; die "installing the $SUITE kernel failed"; }
in_root apt-cache policy linux-image-amd64 >"$work/kernel-policy.txt"
if grep -q "$SUITE-backports" "$work/kernel-policy.txt"; then
    log "installing the $SUITE-backports kernel"
    in_root apt-get install -y -q -t "$SUITE-backports" linux-image-amd64 >>"$work/apt.log" 2>&1 \
        || { tail -n 30 "$work/apt.log" >&2; die "installing the $SUITE-backports kernel failed"; }
else
    log "WARNING: $SUITE-backports has no kernel at $mirror; the fleet runs one kernel line"
fi
log "installing the workloads: ${WORKLOAD_PACKAGES[*]}"
# No daemon starts inside the chroot (policy-rc.d 101: "action forbidden"); the packages' own postinst
# still creates PostgreSQL's 15/main cluster and MariaDB's data directory.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
in_root apt-get install -y -q "${WORKLOAD_PACKAGES[@]}" >>"$work/apt.log" 2>&1 \
    || { tail -n 30 "$work/apt.log" >&2; die "installing the workloads failed"; }
rm -f "$rootfs/usr/sbin/policy-rc.d"
unmount_rootfs

log "configuring the guest"
for moddir in "$rootfs"/lib/modules/*/; do
    release="$(basename "$moddir")"
    for dir in "${PRUNED_MODULE_DIRS[@]}"; do rm -rf "${moddir}kernel/$dir"; done
    in_root depmod "$release"
done
printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$rootfs/etc/fstab"
printf 'memtune-lab\n' >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n' >"$rootfs/etc/hosts"
printf 'nameserver 10.0.2.3\n' >"$rootfs/etc/resolv.conf"
cat >"$rootfs/etc/systemd/network/10-lab.network" <<'EOF'
[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
in_root systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
in_root systemctl disable systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer >/dev/null 2>&1 || true
in_root systemctl disable "${WORKLOAD_UNITS[@]}" >/dev/null 2>&1
install -d -m 700 "$rootfs/root/.ssh"
install -m 600 "$LAB_KEY.pub" "$rootfs/root/.ssh/authorized_keys"
: >"$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

out="$work/out"
mkdir -p "$out/kernels"
for kernel in "$rootfs"/boot/vmlinuz-*; do
    release="${kernel##*/vmlinuz-}"
    line="$(cut -d. -f1,2 <<<"$release")"
    mkdir -p "$out/kernels/$line"
    cp "$kernel" "$out/kernels/$line/vmlinuz"
    cp "$rootfs/boot/initrd.img-$release" "$out/kernels/$line/initrd.img"
    printf '%s\n' "$release" >"$out/kernels/$line/release"
    log "kernel line $line: $release (initrd $(du -h "$out/kernels/$line/initrd.img" | cut -f1))"
done

log "writing the root filesystem ($IMAGE_SIZE, $(du -sh "$rootfs" | cut -f1) used)"
mkfs.ext4 -q -F -L memtune-root -d "$rootfs" "$work/root.raw" "$IMAGE_SIZE"
qemu-img convert -O qcow2 "$work/root.raw" "$out/base.qcow2"
rm -f "$work/root.raw"
{
    printf 'key=%s\nsuite=%s\nmirror=%s\nbuilt=%s\nbuild_seconds=%s\n' "$(lab_image_key)" "$SUITE" "$mirror" \
        "$(date -u +%FT%TZ)" "$((SECONDS - started))"
    for dir in "$out"/kernels/*/; do
        printf 'kernel_%s=%s\n' "$(basename "$dir")" "$(cat "$dir/release")"
    done
} >"$out/manifest"
rm -rf "$dest"
mv "$out" "$dest"
for old in "$LAB_CACHE"/images/*/; do
    [[ ${old%/} == "$dest" ]] || { log "removing the outdated image $(basename "$old")"; rm -rf "$old"; }
done
log "image built in $((SECONDS - started)) s: $dest"
