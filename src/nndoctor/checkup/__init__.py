"""The checkup: the whole tour of nndoctor on the embedded default (or the user's model and data).

A checkup is a list of stages. Each stage measures, judges and, where it can, treats and
re-measures, and returns a :class:`StageOutcome`: summary rows (finding, evidence, treatment,
effect) and the full result objects behind them. Rendering is left to :mod:`nndoctor.report`.

Examples
--------
>>> result = run_checkup(stages=[ENVIRONMENT_STAGE])
>>> result.stages[0].name
'environment'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from nndoctor.checkup import _report  # noqa: F401  (registers the checkup's sections)
from nndoctor.checkup._environment import ENVIRONMENT_STAGE
from nndoctor.checkup._types import (
    CheckupContext,
    CheckupResult,
    ProgressCallback,
    Severity,
    Stage,
    StageOutcome,
    SummaryRow,
)

__all__ = [
    "ENVIRONMENT_STAGE",
    "CheckupContext",
    "CheckupResult",
    "ProgressCallback",
    "Severity",
    "Stage",
    "StageOutcome",
    "SummaryRow",
    "default_stages",
    "run_checkup",
]


def default_stages() -> list[Stage]:
    """The stages of the checkup, in the order they run.

    Examples
    --------
    >>> [s.name for s in default_stages()][0]
    'environment'
    """
    from nndoctor.checkup._monitor import monitor_stage
    from nndoctor.checkup._shift import SHIFT_STAGE
    from nndoctor.checkup._shift_weights import SHIFT_CORRECTION_STAGE
    from nndoctor.checkup._stability import STABILITY_STAGE

    return [
        ENVIRONMENT_STAGE,
        STABILITY_STAGE,
        Stage("monitor", "Training monitor", monitor_stage),
        SHIFT_CORRECTION_STAGE,
        SHIFT_STAGE,
    ]


def run_checkup(
    *,
    stages: Sequence[Stage] | None = None,
    context: CheckupContext | None = None,
    on_stage: Callable[[Stage], ProgressCallback] | None = None,
) -> CheckupResult:
    """Run the checkup's stages in order.

    Parameters
    ----------
    stages : sequence of Stage, optional
        Defaults to :func:`default_stages`.
    context : CheckupContext, optional
        Seed and user inputs; the embedded default when omitted.
    on_stage : callable, optional
        Called at the start of each stage; returns the progress callback for that stage (the
        command line uses it to draw one progress bar per stage).

    Returns
    -------
    CheckupResult
    """
    from nndoctor.checkup._inputs import check_user_inputs, seed_everything

    ctx = context or CheckupContext()
    if ctx.user_mode and ctx.data is None:  # every check before any stage spends time
        data = check_user_inputs(
            source=ctx.source, target=ctx.target, label=ctx.label, model_spec=ctx.model_spec,
            weights=ctx.weights, input_shape=ctx.input_shape, random_state=ctx.random_state,
            exclude=ctx.exclude, include=ctx.include,
        )  # fmt: skip
        shape = ctx.input_shape if data is None else data.input_shape
        ctx = replace(ctx, data=data, input_shape=shape)
    outcomes = []
    for stage in stages if stages is not None else default_stages():
        progress = on_stage(stage) if on_stage is not None else ctx.progress
        seed_everything(ctx.random_state)  # whatever a stage draws from the global generators
        outcomes.append(stage.run(replace(ctx, progress=progress)))
    return CheckupResult(tuple(outcomes))
