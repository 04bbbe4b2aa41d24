"""Matplotlib helpers: figures are drawn off-screen (Agg) and embedded as base64 PNG."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from nndoctor._validation import check_number
from nndoctor.exceptions import InvalidParameterError

__all__ = ["capture_figures", "figure_to_png_base64", "new_figure"]

# figures drawn while capture_figures() is active (for result.plot()); None when not capturing
_CAPTURED: ContextVar[list[Any] | None] = ContextVar("nndoctor_captured_figures", default=None)


@contextlib.contextmanager
def capture_figures() -> Iterator[list[Any]]:
    """Collect, in order, the figures :func:`new_figure` makes inside the ``with`` block.

    Examples
    --------
    >>> with capture_figures() as figs:
    ...     fig, ax = new_figure()
    >>> figs == [fig]
    True
    """
    figures: list[Any] = []
    token = _CAPTURED.set(figures)
    try:
        yield figures
    finally:
        _CAPTURED.reset(token)


def new_figure(*, width: float = 6.4, height: float = 3.6) -> tuple[Any, Any]:
    """Return ``(figure, axes)`` drawn with the off-screen Agg canvas (no display needed).

    Examples
    --------
    >>> fig, ax = new_figure()
    >>> type(fig).__name__
    'Figure'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = check_number(width, name="width", minimum=0.0, exclusive_minimum=True)
    height = check_number(height, name="height", minimum=0.0, exclusive_minimum=True)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    captured = _CAPTURED.get()
    if captured is not None:
        captured.append(fig)
    return fig, ax


def figure_to_png_base64(fig: Any, *, dpi: int = 100) -> str:
    """Encode a matplotlib figure as base64 PNG text.

    Examples
    --------
    >>> fig, ax = new_figure()
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> figure_to_png_base64(fig)[:8]
    'iVBORw0K'
    """
    if not hasattr(fig, "savefig"):
        raise InvalidParameterError(
            f"fig must be a matplotlib Figure, got {type(fig).__name__}; draw on new_figure()"
        )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")
