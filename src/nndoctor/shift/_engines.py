"""Which engine runs a shift function: in memory, or on Dask for a Dask collection.

A public shift function (``ks_test``, ``compare_samples``, ``mmd_test``, ...) lives beside its
in-memory kernels, and its Dask implementation (``shift/_dask*.py``) builds on those kernels.
Were the public function to import its Dask implementation, the two modules would import each
other (an import cycle, which the ``no-cycles`` contract in pyproject.toml forbids). So the
dependency is turned round: each Dask module registers its entry points here by name
(:func:`register_dask`, at the end of the module), :mod:`nndoctor.shift` imports the Dask
modules when it is imported (cheap: they import Dask itself only inside their functions), and a
public function that meets a Dask input (:func:`is_dask`) calls ``dask_impl("name")(...)``.

This module sits below every other shift module and imports none of them.

>>> from nndoctor.shift._engines import dask_impl, is_dask
>>> import numpy as np
>>> is_dask(np.zeros(3)), callable(dask_impl("feature_test"))
(False, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DASK_SAMPLE_SIZE", "dask_impl", "is_dask", "register_dask"]

#: Rows drawn at random from each Dask table by the tests that fit a model on the rows (the
#: classifier test, the diagnosis): the default of their ``sample_size`` (shift/_dask_sample.py).
DASK_SAMPLE_SIZE = 20_000

_DASK: dict[str, Callable[..., Any]] = {}


def is_dask(x: Any) -> bool:
    """True for a Dask collection (checked without importing Dask)."""
    return type(x).__module__.startswith("dask")


def register_dask(**entries: Callable[..., Any]) -> None:
    """Register Dask implementations by name (``register_dask(feature_test=feature_test)``)."""
    _DASK.update(entries)


def dask_impl(name: str) -> Callable[..., Any]:
    """The registered Dask implementation called ``name``."""
    try:
        return _DASK[name]
    except KeyError:
        raise LookupError(
            f"no Dask implementation named {name!r} is registered (registered: "
            f"{sorted(_DASK)}); import nndoctor.shift, whose __init__ imports the Dask modules"
        ) from None
