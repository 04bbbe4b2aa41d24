"""Checkup stage: the default digits MLP trained briefly under the :class:`Monitor`.

The default model (PyTorch's default initialization, ReLU, depth 8) is trained for a few dozen
SGD steps; the monitor's findings become summary rows. When gradients vanish, the treatment is
the remedy the finding names (re-initialize with ``kaiming_normal``, biases 0), and the same
run is repeated to measure its effect.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nndoctor.checkup._types import CheckupContext, Severity, StageOutcome, SummaryRow
from nndoctor.exceptions import InvalidParameterError

__all__ = ["MONITOR_STAGE_STEPS", "monitor_stage"]

MONITOR_STAGE_STEPS = 60


def _kaiming_(model: nn.Module) -> nn.Module:
    import torch

    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            with torch.no_grad():
                std = (2.0 / module.in_features) ** 0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                if module.bias is not None:
                    module.bias.zero_()
    return model


def _user_data(ctx: CheckupContext) -> tuple[Any, ...]:
    """The user's source rows as train/test tensors of the model's input shape, standardized
    with the source's mean and standard deviation, and labels 0..K-1."""
    import numpy as np
    import torch

    data = ctx.data
    if data is None:
        raise InvalidParameterError("internal: the user's monitor run needs the checked tables")
    rng = np.random.default_rng(ctx.random_state)
    order = rng.permutation(data.y_source.size)
    cut = int(0.7 * order.size)
    tr, te = order[:cut], order[cut:]
    X = data.X_source
    y = torch.from_numpy(data.y_source)
    return data.model_inputs(X[tr]), data.model_inputs(X[te]), y[tr], y[te]


def _user_monitor_stage(ctx: CheckupContext) -> StageOutcome:
    from nndoctor.checkup._inputs import load_user_model
    from nndoctor.scenarios._training import train_digits

    if ctx.model_spec is None or ctx.data is None:
        missing = "--model" if ctx.model_spec is None else "--source and --label"
        row = SummaryRow(
            stage="monitor",
            finding="training not monitored",
            evidence=f"no {missing} given",
            treatment="pass --model, --source and --label to train your model briefly under the "
            "Monitor (or use nndoctor.Monitor in your own loop)",
            effect="-",
            severity="info",
        )
        return StageOutcome("monitor", "Training monitor", (row,), ())
    ctx.progress(0.0, f"training {ctx.model_spec} under the monitor")
    model = load_user_model(ctx.model_spec, weights=ctx.weights, seed=ctx.random_state)
    run = train_digits(
        model,
        steps=MONITOR_STAGE_STEPS,
        seed=ctx.random_state,
        data=_user_data(ctx),
        progress=ctx.progress,
    )
    scaled = _scaling_note(ctx)
    rows = [
        SummaryRow(
            stage="monitor",
            finding=f"{f.check} at layer {f.layer}, step {f.step}",
            evidence=f"{f.message} ({scaled})",
            treatment=f.remedy,
            effect="-",
            severity=f.severity,
        )
        for f in run.findings
        if f.severity != "info"
    ] or [
        SummaryRow(
            stage="monitor",
            finding=f"{run.steps} training steps of {ctx.model_spec} without a warning",
            evidence=f"loss {run.first_loss:.3g} → {run.last_loss:.3g}; held-out accuracy "
            f"{run.test_accuracy:.0%} ({scaled})",
            treatment="none needed",
            effect="-",
            severity="ok",
        )
    ]
    ctx.progress(1.0, "done")
    return StageOutcome("monitor", "Training monitor", tuple(rows), (run.log,))


def _scaling_note(ctx: CheckupContext) -> str:
    """How the model's inputs were prepared, for the evidence column."""
    data = ctx.data
    if data is None:
        return ""
    from nndoctor.scenarios._training import describe_optimizer

    note = (
        f"trained by the checkup's {describe_optimizer()} on "
        f"{len(data.features)} columns of {data.source} standardized with the source's mean "
        "and standard deviation"
    )
    if data.text_features:
        note += f"; text column(s) {', '.join(data.text_features[:3])} not fed to the model"
    if data.column_note:
        note += f"; {data.column_note}"
    return note


def monitor_stage(ctx: CheckupContext) -> StageOutcome:
    """Train the default digits MLP under the monitor; report findings, treat vanishing.

    The stage trains :data:`MONITOR_STAGE_STEPS` SGD steps (twice when it treats).

    Examples
    --------
    >>> MONITOR_STAGE_STEPS
    60
    """
    from nndoctor.checkup._inputs import with_user_data
    from nndoctor.scenarios import digits_mlp
    from nndoctor.scenarios._training import train_digits

    if ctx.user_mode:
        return _user_monitor_stage(with_user_data(ctx))
    seed = ctx.random_state
    ctx.progress(0.0, "training the default MLP under the monitor")
    run = train_digits(
        digits_mlp(seed=seed),
        steps=MONITOR_STAGE_STEPS,
        seed=seed,
        progress=lambda f, t: ctx.progress(0.5 * f, t),
    )
    rows: list[SummaryRow] = []
    results: list[object] = [run.log]
    labels = ["default init"]
    serious = [f for f in run.findings if f.severity != "info"]
    vanishing = any(f.check == "vanishing" for f in serious)
    treated = None
    if vanishing:
        ctx.progress(0.5, "re-training with kaiming_normal")
        treated = train_digits(
            _kaiming_(digits_mlp(seed=seed)),
            steps=MONITOR_STAGE_STEPS,
            seed=seed,
            progress=lambda f, t: ctx.progress(0.5 + 0.5 * f, "treated: " + t),
        )
        results.append(treated.log)
        labels.append("after kaiming_normal")
    for f in serious:
        treatment, effect = f.remedy, "-"
        if treated is not None:
            before = sum(g.check == f.check for g in serious)
            after = sum(g.check == f.check and g.severity != "info" for g in treated.findings)
            treatment = "re-initialize with kaiming_normal (biases 0) and train again"
            effect = f"{f.check} findings {before} → {after}"
            if f.check == "vanishing":
                effect += (
                    f"; loss after {MONITOR_STAGE_STEPS} steps {run.last_loss:.3g} → "
                    f"{treated.last_loss:.3g}; test accuracy {run.test_accuracy:.0%} → "
                    f"{treated.test_accuracy:.0%}"
                )
        severity: Severity = f.severity
        rows.append(
            SummaryRow(
                stage="monitor",
                finding=f"{f.check} at layer {f.layer}, step {f.step}",
                evidence=f.message,
                treatment=treatment,
                effect=effect,
                severity=severity,
            )
        )
    if not rows:
        rows.append(
            SummaryRow(
                stage="monitor",
                finding=f"{run.steps} training steps without a warning",
                evidence=f"loss {run.first_loss:.3g} → {run.last_loss:.3g}",
                treatment="none needed",
                effect="-",
                severity="ok",
            )
        )
    ctx.progress(1.0, "done")
    return StageOutcome("monitor", "Training monitor", tuple(rows), tuple(results), tuple(labels))
