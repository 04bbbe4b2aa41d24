"""nndoctor: diagnose and treat numerical instability inside deep networks and distribution shift
outside them.

Subpackages are imported lazily, so ``import nndoctor`` is cheap:

>>> import nndoctor
>>> nndoctor.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nndoctor import _display

if TYPE_CHECKING:
    from nndoctor._display import NotebookRenderer

__version__ = "0.1.0"

_SUBMODULES = ("exceptions", "report")

_LAZY_ATTRIBUTES = {"Monitor": "nndoctor.stability.monitor"}

__all__ = ["Monitor", "__version__", "exceptions", "report"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"nndoctor.{name}")
    if name in _LAZY_ATTRIBUTES:  # torch is imported only when the name is used
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'nndoctor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def _notebook_renderer() -> NotebookRenderer:
    """The report's notebook renderer, imported on a result's first display (with jinja2 and
    matplotlib): the foundation's results find it through :mod:`nndoctor._display`, so no
    lower layer imports the report (docs/architecture.md, "Results in notebooks")."""
    from nndoctor.report import _notebook

    return _notebook


_display.register_notebook_renderer(_notebook_renderer)
