"""``nndoctor shift …``: the sub-app; each capability adds its commands from its own module."""

from __future__ import annotations

import typer

__all__ = ["shift_app"]

shift_app = typer.Typer(
    help="Distribution shift: test, weights, labels, diagnose, stream.", no_args_is_help=True
)
