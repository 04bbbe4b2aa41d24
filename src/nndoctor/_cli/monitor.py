"""``nndoctor monitor``: summarize a training monitor's log; run a short monitored training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nndoctor._cli._common import (
    FailOnOption,
    JsonOption,
    ReportOption,
    emit,
    exit_on_finding,
    progress_bar,
)

__all__ = ["monitor_app"]

monitor_app = typer.Typer(
    help="Training monitor: summarize logs, run a short monitored training.",
    no_args_is_help=True,
)


@monitor_app.command("summarize")
def summarize(
    log: Annotated[Path, typer.Argument(help="monitor.jsonl, or the Monitor's log_dir.")],
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Render a monitor log: findings, per-layer table, gradient-norm plots (in --report)."""
    from nndoctor.stability.monitor import read_log

    with progress_bar("reading log") as advance:
        result = read_log(log)
        advance(1.0, f"{result.n_ticks} ticks")
    emit(result, json_out=json_out, report=report, title="nndoctor monitor")
    exit_on_finding(result, fail_on)


@monitor_app.command("run")
def run(
    model: Annotated[
        str | None,
        typer.Option(help="file.py:factory or module:factory (64 inputs, 10 outputs)."),
    ] = None,
    steps: Annotated[int, typer.Option(help="SGD steps.")] = 60,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.05,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    log_dir: Annotated[Path | None, typer.Option(help="Write monitor.jsonl here.")] = None,
    every: Annotated[int, typer.Option(help="Measure and log every this many steps.")] = 1,
    update_every: Annotated[
        int, typer.Option(help="Measure the update-to-weight ratio every this many ticks.")
    ] = 10,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Train a model (the default digits MLP if none) on the digits under the monitor."""
    from nndoctor._io import load_model
    from nndoctor.scenarios import digits_mlp
    from nndoctor.scenarios._training import train_digits

    net = load_model(model, seed=seed) if model is not None else digits_mlp(seed=seed)
    with progress_bar("monitored training") as advance:
        result = train_digits(
            net,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            log_dir=log_dir,
            progress=advance,
            every=every,
            update_every=update_every,
        )
    emit(result.log, json_out=json_out, report=report, title="nndoctor monitor run")
    exit_on_finding(result.log, fail_on)
