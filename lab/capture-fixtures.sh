#!/usr/bin/env bash
# Capture each lab guest's /proc, /sys and /etc files (lab/capture_tree.py) into tests/fixtures/hosts/<name>/.
#
#   lab/capture-fixtures.sh [NAME...]      (default: every guest of lab/fleet.conf)
#
# Uses the running fleet; when it is not running, starts it and stops it again afterwards. Each guest's
# directory is replaced whole, so a capture never mixes files of two runs.
set -euo pipefail
# shellcheck source=lab/common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FIXTURES="${MEMTUNE_LAB_FIXTURES:-$REPO_DIR/tests/fixtures/hosts}"

fleet="$(fleet_lines)"
mapfile -t guests < <(cut -d'|' -f1 <<<"$fleet")

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${guests[@]}")

if ! guests_running "${guests[@]}"; then
    trap '"$LAB_DIR/down.sh"' EXIT
    "$LAB_DIR/up.sh"
fi

for name in "${names[@]}"; do
    tmp="$(mktemp -d "$FIXTURES/.capture.XXXXXX")"
    if ! ssh -F "$LAB_RUN/ssh_config" "$name" python3 - <"$LAB_DIR/capture_tree.py" | tar -x -C "$tmp"; then
        rm -rf "$tmp"
        die "$name: capture failed"
    fi
    rm -rf "${FIXTURES:?}/$name"
    mv "$tmp" "$FIXTURES/$name"
    log "$name: captured $(find "$FIXTURES/$name" -type f | wc -l) files into tests/fixtures/hosts/$name"
done
