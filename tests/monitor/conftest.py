"""The monitor's tests use tiny models: one intra-op thread is faster and wastes no CPU spinning."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# the corpus of real architectures (tests/stability/arch_corpus.py) is shared with the
# stability tests; make it importable when only tests/monitor is collected
_STABILITY = str(Path(__file__).resolve().parents[1] / "stability")
if _STABILITY not in sys.path:
    sys.path.insert(0, _STABILITY)
