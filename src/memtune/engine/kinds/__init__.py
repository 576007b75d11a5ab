"""The knob kinds, discovered: every module of this package (but ``base`` and ``_`` modules, which are
shared code) holds one kind as ``KIND``; ``KINDS`` is them in their declared order. Adding a kind is adding
a module (docs/architecture.md "Adding a knob kind")."""

from __future__ import annotations

import importlib
import pkgutil

from memtune.engine.kinds.base import AnyKind, KnobKind


def _discover() -> tuple[AnyKind, ...]:
    found: list[AnyKind] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        kind = getattr(importlib.import_module(f"{__name__}.{info.name}"), "KIND", None)
        if not isinstance(kind, KnobKind):
            raise ImportError(f"{__name__}.{info.name} has no KIND (a KnobKind)")
        found.append(kind)
    orders = [kind.order for kind in found]
    if len(set(orders)) != len(orders):
        raise ImportError(f"two knob kinds share an order: {sorted(orders)}")
    return tuple(sorted(found, key=lambda kind: kind.order))


KINDS: tuple[AnyKind, ...] = _discover()
