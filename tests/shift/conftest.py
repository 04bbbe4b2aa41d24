"""Shared set-up for the shift tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small problems: one thread for torch, BLAS and OpenMP (no pool contention under xdist)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _small_local_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's Dask engine starts one in-process worker in tests (not one process
    per core: seconds each on the shared machine)."""
    from nndoctor._cli import _engine

    monkeypatch.setattr(
        _engine,
        "local_cluster_options",
        lambda: {
            "n_workers": 1,
            "threads_per_worker": 1,
            "processes": False,
            "memory_limit": "auto",
            "dashboard_address": ":0",
        },
    )
