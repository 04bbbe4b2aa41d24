"""How results find the renderer that shows them in a notebook, without importing it.

Every result's ``_repr_html_`` and ``plot()`` (:class:`nndoctor._results.ResultMixin`) and the
Monitor's ``_repr_html_`` draw through the report's notebook renderer, which sits layers above
them (it imports jinja2 and matplotlib). They ask this registry for it at display time; the
root package (``nndoctor/__init__.py``, which every ``import nndoctor...`` runs first)
registers a loader that imports the renderer on first display. So a result made and shown in
a fresh notebook renders without anyone importing ``nndoctor.report``, ``import nndoctor``
pulls in neither jinja2 nor matplotlib, and no module of a lower layer imports a higher one.

Examples
--------
>>> renderer = notebook_renderer()  # (imports the report's renderer on first use)
>>> callable(renderer.display_html) and callable(renderer.result_figure)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from nndoctor.exceptions import NNDoctorError

__all__ = ["NotebookRenderer", "notebook_renderer", "register_notebook_renderer"]


class NotebookRenderer(Protocol):
    """What shows results in a notebook (``nndoctor.report._notebook`` is one)."""

    def display_html(self, result: Any) -> str:
        """A result as an HTML fragment; never raises."""

    def monitor_html(self, monitor: Any) -> str:
        """A training Monitor's findings so far as an HTML fragment; never raises."""

    def result_figure(self, result: Any) -> Any:
        """The matplotlib figure of a result's main picture."""


_loader: list[Callable[[], NotebookRenderer]] = []  # the one registered loader, if any


def register_notebook_renderer(loader: Callable[[], NotebookRenderer]) -> None:
    """Make ``loader()`` the way results get their notebook renderer (it replaces any other).

    ``loader`` is called at each display, so it should import lazily and return quickly.
    """
    _loader[:] = [loader]


def notebook_renderer() -> NotebookRenderer:
    """The registered notebook renderer.

    Raises
    ------
    NNDoctorError
        When none is registered (``nndoctor/__init__.py`` registers the report's).
    """
    if not _loader:
        raise NNDoctorError(
            "no notebook renderer is registered; import nndoctor (its __init__ registers the "
            "report's) before displaying a result"
        )
    return _loader[0]()
