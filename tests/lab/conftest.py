"""Tests of the lab scripts (lab/). Those marked `fleet` boot QEMU guests: they run only with
MEMTUNE_FLEET_TESTS=1 (`make test-lab-faults`), since they take minutes and need root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"
if str(LAB) not in sys.path:
    sys.path.insert(0, str(LAB))


@pytest.fixture
def lab_dir() -> Path:
    return LAB
