"""Terminal rendering with rich: results on stdout, diagnostics and progress on stderr."""

from __future__ import annotations

import os
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from nndoctor.report._section import Section, check_sections

__all__ = ["print_sections", "stderr_console", "stdout_console"]

#: Width of the tables when stdout is not a terminal (piped to a file or another program) and
#: ``COLUMNS`` is not set: rich would otherwise assume 80 columns and squeeze the tables.
PIPE_WIDTH = 160

_STYLE = {"ok": "green", "info": "cyan", "warning": "yellow", "error": "bold red"}


def stdout_console() -> Console:
    """The console for results (stdout); 160 columns wide when piped (``COLUMNS`` overrides)."""
    console = Console(soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def stderr_console() -> Console:
    """The console for diagnostics and progress bars (stderr)."""
    return Console(stderr=True)


def print_sections(sections: Sequence[Section], console: Console | None = None) -> None:
    """Print sections as headed tables.

    Examples
    --------
    >>> from rich.console import Console
    >>> from nndoctor.report import Section
    >>> c = Console(width=60, no_color=True)
    >>> print_sections([Section("Demo", "ok", "all good", ({"a": 1},))], c)
    ─...─ Demo ─...─
    OK  all good
    ...
    """
    console = console or stdout_console()
    for section in check_sections(sections):
        console.rule(f"[bold]{section.title}")
        if section.verdict:
            style = _STYLE[section.status]
            console.print(f"[{style}]{section.status.upper()}[/]  {section.verdict}")
        if section.table:
            table = Table(show_header=True, header_style="bold")
            for key in section.table[0]:
                # fold a value too long for its column onto the next lines: never cut it with
                # "…" (a narrow terminal, or a pipe at 80 columns, lost file and column names)
                table.add_column(str(key), overflow="fold")
            for row in section.table:
                table.add_row(*(str(v) for v in row.values()))
            console.print(table)
