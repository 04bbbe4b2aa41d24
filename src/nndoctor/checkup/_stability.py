"""The checkup's stability stage: the default digits MLP probed, audited, fixed and re-probed."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import torch

from nndoctor.checkup._types import CheckupContext, Stage, StageOutcome, SummaryRow

if TYPE_CHECKING:
    from nndoctor.stability import PropagationReport

__all__ = ["STABILITY_STAGE", "stability_stage"]

_BATCH = 256


def stability_stage(ctx: CheckupContext) -> StageOutcome:
    """Probe the digits MLP at PyTorch's default init, audit it, fix it, probe again.

    The model is 8 ReLU layers of width 64 (:func:`nndoctor.scenarios.digits_mlp`); the fix is
    :func:`~nndoctor.stability.recommend_init` with ``apply=True``; the summary rows carry the
    before/after gains (tested in ``tests/stability/test_stability_recommend_cli.py``).
    """
    from nndoctor.checkup._inputs import with_user_data
    from nndoctor.scenarios import digits_data, digits_mlp
    from nndoctor.stability import audit_init, find_symmetric_units, probe, recommend_init

    ctx = with_user_data(ctx)
    gen = torch.Generator().manual_seed(ctx.random_state)
    if ctx.user_mode and ctx.model_spec is None:
        return _no_model(ctx)
    if ctx.model_spec is not None:
        from nndoctor.checkup._inputs import load_user_model
        from nndoctor.exceptions import InvalidParameterError

        ctx.progress(0.0, f"loading {ctx.model_spec}")
        model = load_user_model(ctx.model_spec, weights=None, seed=ctx.random_state)
        if ctx.data is not None:  # real rows, standardized as the monitor stage trains on them
            source_rows = ctx.data.X_source
            pick = torch.randperm(source_rows.shape[0], generator=gen)[:_BATCH].numpy()
            x = ctx.data.model_inputs(source_rows[pick])
            inputs = f"{x.shape[0]} rows of {ctx.data.source}, standardized"
        elif ctx.input_shape is not None:
            x = torch.randn((_BATCH, *ctx.input_shape), generator=gen)
            inputs = f"{_BATCH} standard normal inputs of shape {ctx.input_shape}"
        else:
            raise InvalidParameterError(
                "checking a user model needs the shape of one input sample; pass --input-shape"
            )
        name = ctx.model_spec
    else:
        ctx.progress(0.0, "loading the digits MLP")
        data = digits_data(random_state=ctx.random_state)
        idx = torch.randperm(len(data.X_train), generator=gen)[:_BATCH]
        x = torch.from_numpy(data.X_train)[idx]
        model = digits_mlp(seed=ctx.random_state)
        name = "the default digits MLP (8 ReLU layers at PyTorch's default init)"
        inputs = ""
    ctx.progress(0.1, "probing at PyTorch's default init")
    before = probe(model, x)
    ctx.progress(0.25, "auditing the initialization")
    audit = audit_init(model)
    symmetry = find_symmetric_units(model)
    ctx.progress(0.4, "trying initialization schemes")
    rec = recommend_init(model, x, apply=True, random_state=ctx.random_state)
    ctx.progress(0.9, "re-probing the fixed model")
    after = probe(model, x)
    ctx.progress(1.0, "done")

    mf = audit.mean_field
    theory = (
        f"; theory: chi1 = {mf.chi1:.3g} per layer, q* = {mf.q_star:.2g} (bias floor), "
        f"correlation depth {mf.correlation_depth_scale:.2g} layers"
        if mf is not None
        else ""
    )
    effect = (
        f"{after.verdict}: forward gain {before.forward_gain:.3g} -> {after.forward_gain:.3g}, "
        f"backward gain {before.backward_gain:.3g} -> {after.backward_gain:.3g}"
    )
    first = audit.layers[min(1, len(audit.layers) - 1)] if audit.layers else None
    rows = [
        SummaryRow(
            stage="stability",
            finding=f"signal {before.verdict} through {name}",
            evidence=(f"on {inputs}: " if inputs else "")
            + f"forward gain {before.forward_gain:.3g}, backward gain "
            f"{before.backward_gain:.3g}"
            + (f", trouble from layer {before.onset_layer!r}" if before.onset_layer else "")
            + theory,
            treatment=f"recommend_init: {rec.scheme} (best of "
            f"{', '.join(c.scheme for c in rec.candidates)})",
            effect=effect,
            severity="error" if before.verdict != "healthy" else "ok",
        ),
        SummaryRow(
            stage="stability",
            finding=f"initialization looks like {first.scheme}: "
            f"fan_in*Var(W) = {first.fan_in_var:.2f}"
            if first
            else "no Linear/Conv layer to audit",
            evidence=f"x{first.forward_factor:.2f} second moment per layer followed by "
            f"{first.activation} (KS tests against the candidate laws)"
            if first
            else "-",
            treatment=_init_treatment(rec.scheme),
            effect="-" if rec.scheme == "current" else _factor_effect(after, len(audit.layers)),
            severity="warning" if first and not first.recommendation.endswith("keep") else "ok",
        ),
        SummaryRow(
            stage="stability",
            finding="no tied units" if not symmetry.collapsed else symmetry.verdict,
            evidence=", ".join(f"{la.effective_units}/{la.units}" for la in symmetry.layers),
            treatment="none needed" if not symmetry.collapsed else "random re-initialization",
            effect="-",
            severity="ok" if not symmetry.collapsed else "warning",
        ),
    ]
    return StageOutcome(
        "stability",
        "Stability at initialization",
        tuple(rows),
        (before, audit, symmetry, rec),
        ("default init", "", "", ""),
    )


def _no_model(ctx: CheckupContext) -> StageOutcome:
    """The user gave tables and no model: no network to probe (the demo network is not theirs)."""
    ctx.progress(1.0, "no --model given")
    row = SummaryRow(
        stage="stability",
        finding="no model to check",
        evidence="no --model given",
        treatment="pass --model file.py:factory to probe your network's initialization",
        effect="-",
        severity="info",
    )
    return StageOutcome("stability", "Stability at initialization", (row,), ())


def _init_treatment(scheme: str) -> str:
    """The call that applies ``scheme`` (``"current"``: none, the model's own init is kept)."""
    if scheme == "current":
        return "none needed (keep the current initialization)"
    return "lsuv_(model, x)" if scheme == "lsuv" else f"init_(model, '{scheme}')"


def _factor_effect(after: PropagationReport, n_layers: int) -> str:
    """The effect of the fix on the per-layer factor: the second-moment ratio measured between
    consecutive ReLU layers of the re-probe (:func:`_median_factor`) where the model has them;
    else the end-to-end forward gain spread evenly over the ``n_layers`` audited weight layers,
    ``forward_gain ** (2 / n_layers)``, so a model without ReLUs gets a number, not NaN."""
    measured = _median_factor(after)
    if math.isfinite(measured) or n_layers < 1:
        return f"per-layer forward factor now {measured:.2f}"
    spread = after.forward_gain ** (2.0 / n_layers)
    return (
        f"per-layer forward factor now {spread:.2f} (forward gain {after.forward_gain:.3g} "
        f"over {n_layers} layers)"
    )


def _median_factor(report: object) -> float:
    import statistics

    from nndoctor.stability import PropagationReport

    if not isinstance(report, PropagationReport):
        return float("nan")
    pairs = [r.forward_gain for r in report.called_layers if r.kind == "ReLU"]
    ratios = [b / a for a, b in itertools.pairwise(pairs) if a > 0]
    return statistics.median([r * r for r in ratios]) if ratios else float("nan")


STABILITY_STAGE = Stage("stability", "Stability at initialization", stability_stage)
