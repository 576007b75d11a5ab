#!/usr/bin/env bash
# Stop every lab guest by its pidfile (never by process name) and remove the inventory.
#
#   lab/down.sh [--keep-overlays]
#
# Overlays are deleted too unless --keep-overlays is given, so the next start is a fresh guest.
set -euo pipefail
# shellcheck source=lab/common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stop_all_guests
rm -f "$LAB_INVENTORY" "$LAB_RUN/ssh_config" "$LAB_RUN"/ssh-*
if [[ ${1:-} != --keep-overlays ]]; then
    rm -f "$LAB_RUN"/*/overlay.qcow2
fi
log "fleet down"
