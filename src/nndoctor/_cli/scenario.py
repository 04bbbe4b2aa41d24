"""``nndoctor scenario …``: the worked examples; each capability adds its commands."""

from __future__ import annotations

import typer

__all__ = ["scenario_app"]

scenario_app = typer.Typer(help="Worked examples with a known truth.", no_args_is_help=True)
