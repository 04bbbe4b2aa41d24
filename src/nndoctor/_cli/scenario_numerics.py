"""``nndoctor scenario deep-chain`` and ``nndoctor scenario symmetric-mlp``."""

from __future__ import annotations

from typing import Annotated

import typer

from nndoctor._cli._common import JsonOption, ReportOption, emit, progress_bar
from nndoctor._cli.scenario import scenario_app

__all__: list[str] = []


@scenario_app.command("deep-chain")
def deep_chain_cmd(
    depth: Annotated[int, typer.Option("--depth", help="Number of linear layers.")] = 30,
    weight: Annotated[float, typer.Option("--weight", help="Scalar weight of each layer.")] = 0.2,
    activation: Annotated[
        str, typer.Option("--activation", help="identity, relu, tanh, sigmoid or gelu.")
    ] = "identity",
    width: Annotated[int, typer.Option("--width", help="Units per layer.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="float64 (exact) or float32.")] = "float64",
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Probe a chain of scalar layers: the gain is |weight|**depth (vanishing or exploding)."""
    import torch

    from nndoctor._validation import check_choice
    from nndoctor.scenarios import deep_chain
    from nndoctor.stability import probe

    check_choice(dtype, ("float32", "float64"), name="--dtype")
    with progress_bar("probing the chain"):
        model = deep_chain(depth, weight, activation, width)  # type: ignore[arg-type]
        result = probe(
            model,
            torch.ones(1, width),
            dtype=torch.float64 if dtype == "float64" else torch.float32,
        )
    emit(result, json_out=json_out, report=report, title="nndoctor scenario deep-chain")


@scenario_app.command("symmetric-mlp")
def symmetric_mlp_cmd(
    width: Annotated[int, typer.Option("--width", help="Hidden units per layer.")] = 16,
    depth: Annotated[int, typer.Option("--depth", help="Hidden layers.")] = 2,
    steps: Annotated[int, typer.Option("--steps", help="SGD steps.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of data and Xavier draw.")] = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Train a constant-initialized MLP and its Xavier twin; count effective units."""
    from nndoctor.scenarios import symmetry_demo

    with progress_bar("training both MLPs"):
        result = symmetry_demo(width=width, depth=depth, steps=steps, random_state=seed)
    emit(result, json_out=json_out, report=report, title="nndoctor scenario symmetric-mlp")
