"""``nndoctor stability probe|audit|symmetry|recommend``: the network at initialization."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import torch
    from torch import nn

from nndoctor._cli._common import (
    FailOnOption,
    JsonOption,
    ReportOption,
    check_output_path,
    emit,
    exit_on_finding,
    parse_shape,
    progress_bar,
)
from nndoctor.exceptions import InvalidParameterError

__all__ = ["stability_app"]

stability_app = typer.Typer(
    help="Signal propagation, initialization and symmetry of a network at initialization.",
    no_args_is_help=True,
)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="file.py:factory or module:factory returning an nn.Module "
        "(default: the digits MLP of the checkup).",
    ),
]
WeightsOption = Annotated[
    str | None, typer.Option("--weights", help="A state dict to load (weights_only=True).")
]
ShapeOption = Annotated[
    str | None,
    typer.Option(
        "--input-shape",
        help="Shape of one sample, comma-separated, e.g. 64 or 3,32,32; the batch is drawn "
        "from N(0, 1) (default: digits images for the default model).",
    ),
]
BatchOption = Annotated[int, typer.Option("--batch", help="Samples in the random batch.")]
InputsOption = Annotated[
    str | None,
    typer.Option(
        "--inputs",
        help="A batch saved with torch.save: a tensor, or a dict of tensors passed as keyword "
        "arguments (a Hugging Face batch: input_ids, attention_mask, ...); read with "
        "weights_only=True. Replaces the random --input-shape batch.",
    ),
]
InitOption = Annotated[
    str | None, typer.Option("--init", help="Apply this scheme first (see `stability recommend`).")
]
DtypeOption = Annotated[
    str, typer.Option("--dtype", help="float32 (the model's own) or float64 (exact).")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the batch and of --init.")]


def _setup(
    model_spec: str | None,
    weights: str | None,
    input_shape: str | None,
    batch: int,
    init: str | None,
    seed: int,
    inputs: str | None = None,
) -> tuple[nn.Module, Any]:
    import torch

    from nndoctor._io import load_model
    from nndoctor.scenarios import digits_mlp
    from nndoctor.stability import init_

    if batch < 1:
        raise InvalidParameterError(f"--batch must be >= 1, got {batch}")
    if inputs is not None and input_shape is not None:  # before the model is loaded
        raise InvalidParameterError(
            "--inputs and --input-shape both give the batch; pass one of them"
        )
    model = load_model(model_spec, weights=weights, seed=seed) if model_spec else digits_mlp()
    gen = torch.Generator().manual_seed(seed)
    if init is not None:
        init_(model, init, generator=gen)
    if inputs is not None:
        from nndoctor._io import load_batch

        return model, load_batch(inputs)
    if model_spec is None and input_shape is None:
        from nndoctor.scenarios import digits_data

        pixels = torch.from_numpy(digits_data(random_state=seed).X_train)
        idx = torch.randperm(len(pixels), generator=gen)[:batch]
        return model, pixels[idx]
    x = torch.randn((batch, *(parse_shape(input_shape) if input_shape else (64,))), generator=gen)
    return model, x


def _dtype(name: str) -> torch.dtype | None:
    import torch

    from nndoctor._validation import check_choice

    check_choice(name, ("float32", "float64"), name="--dtype")
    return torch.float64 if name == "float64" else None


@stability_app.command("probe")
def probe_cmd(
    model: ModelOption = None,
    weights: WeightsOption = None,
    input_shape: ShapeOption = None,
    inputs: InputsOption = None,
    batch: BatchOption = 64,
    init: InitOption = None,
    dtype: DtypeOption = "float32",
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """One forward and backward pass: per-layer RMS beside theory, and a verdict."""
    from nndoctor.stability import probe

    with progress_bar("probing") as advance:
        net, x = _setup(model, weights, input_shape, batch, init, seed, inputs)
        advance(0.3, "forward and backward")
        result = probe(net, x, dtype=_dtype(dtype))
    emit(result, json_out=json_out, report=report, title="nndoctor stability probe")
    exit_on_finding(result, fail_on)


@stability_app.command("audit")
def audit_cmd(
    model: ModelOption = None,
    weights: WeightsOption = None,
    init: InitOption = None,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Which scheme each layer's weights look drawn from, and what that implies."""
    from nndoctor.stability import audit_init

    with progress_bar("auditing") as advance:
        net, _ = _setup(model, weights, None, 1, init, seed)
        advance(0.2, "KS tests")
        result = audit_init(net)
    emit(result, json_out=json_out, report=report, title="nndoctor stability audit")
    exit_on_finding(result, fail_on)


@stability_app.command("symmetry")
def symmetry_cmd(
    model: ModelOption = None,
    weights: WeightsOption = None,
    input_shape: ShapeOption = None,
    inputs: InputsOption = None,
    batch: BatchOption = 64,
    init: InitOption = None,
    seed: SeedOption = 0,
    with_inputs: Annotated[
        bool, typer.Option("--with-inputs/--weights-only", help="Also compare activations.")
    ] = True,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Tied units per layer, effective width, and whether the tie is permanent."""
    from nndoctor.stability import find_symmetric_units

    with progress_bar("looking for tied units") as advance:
        net, x = _setup(model, weights, input_shape, batch, init, seed, inputs)
        advance(0.3, "comparing units")
        result = find_symmetric_units(net, x if with_inputs else None)
    emit(result, json_out=json_out, report=report, title="nndoctor stability symmetry")
    exit_on_finding(result, fail_on)


@stability_app.command("recommend")
def recommend_cmd(
    model: ModelOption = None,
    weights: WeightsOption = None,
    input_shape: ShapeOption = None,
    inputs: InputsOption = None,
    batch: BatchOption = 64,
    init: InitOption = None,
    seed: SeedOption = 0,
    apply: Annotated[
        Path | None,
        typer.Option(
            "--apply",
            help="Apply the best scheme and save the model's weights to this file (a state "
            "dict; load it with --weights).",
            callback=check_output_path,
        ),
    ] = None,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Try the schemes that suit the model's activations, re-probe each, report the best."""
    import torch

    from nndoctor._io import writing
    from nndoctor.report import stderr_console
    from nndoctor.stability import recommend_init

    with progress_bar("trying schemes") as advance:
        net, x = _setup(model, weights, input_shape, batch, init, seed, inputs)
        advance(0.1, "probing candidates")
        result = recommend_init(net, x, apply=apply is not None, random_state=seed)
    if apply is not None:
        with writing(apply) as tmp:
            torch.save(net.state_dict(), tmp)
        stderr_console().print(
            f"{result.scheme} applied; weights written to {apply} (load them with --weights)"
        )
    emit(result, json_out=json_out, report=report, title="nndoctor stability recommend")
    exit_on_finding(result, fail_on)
