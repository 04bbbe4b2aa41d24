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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from nndoctor._environment import environment_report as _environment_report
from nndoctor._results import ResultMixin as _ResultMixin

if TYPE_CHECKING:
    from nndoctor.checkup._inputs import UserData

__all__ = [
    "ENVIRONMENT_STAGE",
    "CheckupContext",
    "CheckupResult",
    "Stage",
    "StageOutcome",
    "SummaryRow",
    "default_stages",
    "run_checkup",
]

Severity = Literal["ok", "info", "warning", "error"]
ProgressCallback = Callable[[float, str], None]
"""Called with the fraction of the current stage done (0..1) and a short description."""


@dataclass(frozen=True, slots=True)
class SummaryRow(_ResultMixin):
    """One line of the checkup's summary table."""

    stage: str
    finding: str
    evidence: str
    treatment: str
    effect: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class StageOutcome(_ResultMixin):
    """What one stage found: summary rows and the result objects behind them."""

    name: str
    title: str
    summary: tuple[SummaryRow, ...]
    results: tuple[Any, ...] = ()
    #: one label per result ("" for none): what distinguishes results of the same type in the
    #: report, e.g. "before the fix" or a scenario's name; it prefixes their section titles
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckupContext:
    """What a stage is given: the seed, a progress callback, and the user's inputs if any.

    ``model_spec``, ``source``, ``target``, ``label`` and ``input_shape`` are ``None`` for the
    embedded default. ``data`` holds the user's tables once :func:`run_checkup` has read and
    checked them (:func:`nndoctor.checkup._inputs.check_user_inputs`), before any stage runs.
    """

    random_state: int = 0
    progress: ProgressCallback = field(default=lambda fraction, text: None)
    model_spec: str | None = None
    source: str | None = None
    target: str | None = None
    label: str | None = None
    input_shape: tuple[int, ...] | None = None
    weights: str | None = None
    #: feature columns to leave out, and identifier-like columns to keep (``--exclude``,
    #: ``--include``)
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    data: UserData | None = None

    @property
    def user_mode(self) -> bool:
        """True when the user passed a model or tables (the embedded default is not used)."""
        return self.model_spec is not None or self.source is not None


@dataclass(frozen=True, slots=True)
class Stage:
    """A named step of the checkup."""

    name: str
    title: str
    run: Callable[[CheckupContext], StageOutcome]


@dataclass(frozen=True, slots=True)
class CheckupResult(_ResultMixin):
    """Everything the checkup found, stage by stage."""

    stages: tuple[StageOutcome, ...]

    @property
    def summary(self) -> tuple[SummaryRow, ...]:
        """All stages' summary rows, in order."""
        return tuple(row for stage in self.stages for row in stage.summary)

    def worst_severity(self) -> Severity:
        """The most severe finding: ``"error"`` > ``"warning"`` > ``"info"`` > ``"ok"``."""
        order: tuple[Severity, ...] = ("ok", "info", "warning", "error")
        worst = 0
        for row in self.summary:
            worst = max(worst, order.index(row.severity))
        return order[worst]


def _environment_stage(ctx: CheckupContext) -> StageOutcome:
    ctx.progress(0.0, "reading versions and float limits")
    env = _environment_report()
    f32 = next(lim for lim in env.float_limits if lim.dtype == "float32")
    ctx.progress(1.0, "done")
    row = SummaryRow(
        stage="environment",
        finding=f"torch {env.torch} on {env.device}, {env.threads} threads",
        evidence=f"float32 max {f32.max:.3g}, smallest normal {f32.smallest_normal:.3g}",
        treatment="none needed",
        effect="-",
        severity="info",
    )
    return StageOutcome("environment", "Environment", (row,), (env,))


ENVIRONMENT_STAGE = Stage("environment", "Environment", _environment_stage)


def default_stages() -> list[Stage]:
    """The stages of the checkup, in the order they run.

    Examples
    --------
    >>> [s.name for s in default_stages()][0]
    'environment'
    """
    from nndoctor.checkup._monitor import monitor_stage
    from nndoctor.checkup._shift import SHIFT_STAGE  # the stage modules import this one
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
