"""Rendering of result objects: terminal tables, strict JSON, and a self-contained HTML page.

Nothing here computes a statistic. Every capability turns its result into :class:`Section`
objects through :func:`to_sections` (a ``functools.singledispatch`` function that each capability
registers for its own result types); the terminal and the HTML page then render sections.

>>> from nndoctor.report import Section, render_html
>>> html = render_html("demo", [Section(title="A <b>", status="ok", verdict="fine")])
>>> "A &lt;b&gt;" in html
True
"""

from __future__ import annotations

from nndoctor.report import (  # noqa: F401  (register sections)
    _environment,
    _monitor,
    _scenarios,
    _shift_diagnose,
    _shift_tests,
    _shift_weights,
    _stability,
)
from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._html import render_html, write_html
from nndoctor.report._section import Figure, Section, Status, to_sections
from nndoctor.report._terminal import print_sections, stderr_console, stdout_console

__all__ = [
    "Figure",
    "Section",
    "Status",
    "figure_to_png_base64",
    "new_figure",
    "print_sections",
    "render_html",
    "stderr_console",
    "stdout_console",
    "to_sections",
    "write_html",
]
