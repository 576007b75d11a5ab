# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel command-line kind on the host: the arguments memtune owns, changed through the bootloader
(grubby, /etc/default/grub, BLS entries); they take effect at the next boot. Planned here."""

from __future__ import annotations

import re

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import Change
from ansible_collections.memtune.fleet.plugins.module_utils._boot.bootloader import Bootloader, plan_args
from ansible_collections.memtune.fleet.plugins.module_utils._host import persist as _persist
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import mappings, require

# Kernel command-line parameters memtune may own (kernel-parameters.txt), all about memory.
CMDLINE_PARAMS = (
    "hugepagesz",
    "hugepages",
    "default_hugepagesz",
    "hugetlb_cma",
    "hugetlb_free_vmemmap",
    "transparent_hugepage",
    "numa_balancing",
    "kernelcore",
    "movablecore",
)
CMDLINE_ARG = re.compile(r"^([a-z_]+)(=[A-Za-z0-9_.,:+\-]+)?$")


def plan_present(ctx, plan, snapshot, want):
    owned = snapshot["owned"]["kernel_cmdline"]
    if not want and not owned:
        return
    bootloader = Bootloader(ctx.tree, ctx.run, ctx.which)
    if bootloader.tool is None:
        if want:
            ctx.warnings.append(
                "no bootloader found (grubby, %s, BLS entries): kernel command line %s not persisted"
                % ("/etc/default/grub", " ".join(want))
            )
        return
    running = (ctx.tree.read("/proc/cmdline", optional=True) or "").split()
    stale = [arg for arg in owned if arg not in want]
    plan.reboot_required = any(arg not in running for arg in want) or any(arg in running for arg in stale)
    current = bootloader.current()
    if not any(plan_args(args, owned, want)[0] != args for args in current):
        return
    for path in bootloader.files():
        _persist.remember(snapshot, "files", path, ctx.read_file(path))

    def act():
        new_owned, warnings = bootloader.change(owned, want)
        snapshot["owned"]["kernel_cmdline"] = new_owned
        ctx.warnings.extend(warnings)
        return {"tool": bootloader.tool}

    change = Change(
        "cmdline",
        bootloader.tool,
        current[0] if current else [],
        plan_args(current[0] if current else [], owned, want)[0],
        act,
    )
    change.details["tool"] = bootloader.tool
    plan.changes.append(change)


def plan_absent(ctx, plan, snapshot):
    owned = snapshot["owned"]["kernel_cmdline"]
    if not owned:
        return
    bootloader = Bootloader(ctx.tree, ctx.run, ctx.which)
    if bootloader.tool is None:
        ctx.warnings.append(
            "memtune added %s to the kernel command line, but no bootloader tool is found now"
            % " ".join(owned)
        )
        return
    current = bootloader.current()
    running = (ctx.tree.read("/proc/cmdline", optional=True) or "").split()
    plan.reboot_required = any(arg in running for arg in owned)
    if not any(plan_args(args, owned, [])[0] != args for args in current):
        return

    def act():
        ctx.warnings.extend(bootloader.change(owned, [])[1])

    change = Change("cmdline", bootloader.tool, current[0], plan_args(current[0], owned, [])[0], act)
    change.details["tool"] = bootloader.tool
    plan.changes.append(change)


def validate(section):
    args = []
    for where, entry in mappings(section, "kernel_cmdline"):
        arg = entry.get("arg")
        match = CMDLINE_ARG.match(arg) if isinstance(arg, str) else None
        require(match is not None, "%s: %r is not a single name[=value] argument" % (where, arg))
        require(
            match.group(1) in CMDLINE_PARAMS,
            "%s: memtune does not manage %r (allowed: %s)"
            % (where, match.group(1), ", ".join(CMDLINE_PARAMS)),
        )
        args.append(arg)
    return args
