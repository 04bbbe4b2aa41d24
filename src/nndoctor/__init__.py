"""nndoctor: diagnose and treat numerical instability inside deep networks and distribution shift
outside them.

Subpackages are imported lazily, so ``import nndoctor`` is cheap:

>>> import nndoctor
>>> nndoctor.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("exceptions", "report")

__all__ = ["__version__", "exceptions", "report"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"nndoctor.{name}")
    raise AttributeError(f"module 'nndoctor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
