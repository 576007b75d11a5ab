# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hugepages kind on the host: per-node pools (the host-wide pool without NUMA), resized at runtime,
persisted by the boot restore file; planned (present, leftover, rollback) here."""

from __future__ import annotations

from ansible_collections.memtune.fleet.plugins.module_utils._apply.changes import (
    Change,
    PlanError,
    mark_leftover,
)
from ansible_collections.memtune.fleet.plugins.module_utils._apply.runtime import apply_pool, pool_path
from ansible_collections.memtune.fleet.plugins.module_utils._kinds.check import integer, mappings, require


def pool_change(ctx, size_kb, node, before, after):
    """Resize one node's pool; a shortfall is compacted for and retried, then reported in the details."""

    def act():
        allocated, compactions = apply_pool(ctx.tree, size_kb, node, after, ctx.compact_retries)
        return {
            "read_back": allocated,
            "compactions": compactions,
            "shortfall": max(0, after - (allocated or 0)),
        }

    return Change("hugepages", "%dkB node%d" % (size_kb, node), before, after, act)


def plan_present(ctx, plan, pools, snapshot):
    writes = []
    for pool in pools:
        size = pool["size_kb"]
        for node in sorted(pool["per_node"]):
            path = pool_path(ctx.tree, size, node)
            before = ctx.tree.read_int(path, optional=True)
            if before is None:
                raise PlanError("node %d has no pool of %d kB hugepages (%s is missing)" % (node, size, path))
            change = pool_change(ctx, size, node, before, pool["per_node"][node])
            plan.compare(change)
            snapshot["runtime"]["hugepages"].setdefault(str(size), {}).setdefault(str(node), before)
            plan.pools.append(
                {
                    "size_kb": size,
                    "node": node,
                    "before": before,
                    "requested": pool["per_node"][node],
                    "boot": pool["boot"],
                    "required": pool["required"],
                    "change": change,
                }
            )
            writes.append((path, pool["per_node"][node]))
    return writes


def plan_leftover(ctx, plan, originals, before, want):
    kept = {(p["size_kb"], node) for p in want["hugepages"] for node in p["per_node"]}
    for pool in before["hugepages"]:
        for node in sorted(pool["per_node"]):
            original = originals.get(str(pool["size_kb"]), {}).get(str(node))
            if (pool["size_kb"], node) in kept or original is None:
                continue
            now = ctx.tree.read_int(pool_path(ctx.tree, pool["size_kb"], node), optional=True)
            if now is not None:
                mark_leftover(plan, pool_change(ctx, pool["size_kb"], node, now, original))


def restore(ctx, plan, saved):
    """Rollback: every saved pool back to its original size."""
    for size in sorted(saved, key=int):
        for node in sorted(saved[size], key=int):
            before = ctx.tree.read_int(pool_path(ctx.tree, int(size), int(node)), optional=True)
            if before is not None:
                plan.compare(pool_change(ctx, int(size), int(node), before, saved[size][node]))


def validate(section):
    pools, sizes = [], set()
    for where, pool in mappings(section, "hugepages"):
        size = integer(pool.get("size_kb"), where + ".size_kb", minimum=1)
        require(size not in sizes, "%s: a second pool of %d kB pages" % (where, size))
        sizes.add(size)
        per_node = pool.get("per_node")
        require(isinstance(per_node, dict) and per_node, "%s.per_node: expected {node id: count}" % where)
        counts = {}
        for node, count in per_node.items():
            require(str(node).isdigit(), "%s.per_node: %r is not a NUMA node id" % (where, node))
            counts[int(node)] = integer(count, "%s.per_node.%s" % (where, node))
        pools.append(
            {
                "size_kb": size,
                "per_node": counts,
                "boot": bool(pool.get("boot", False)),
                "required": bool(pool.get("required", False)),
            }
        )
    return pools
