"""The checkup's types: what a stage is given, what it returns, and the whole result.

Kept apart from :mod:`nndoctor.checkup` so that the stage modules import them without importing
the package that runs them (the package imports its stages lazily, in :func:`default_stages`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nndoctor._results import ResultMixin

if TYPE_CHECKING:
    from nndoctor.checkup._inputs import UserData

__all__ = [
    "CheckupContext",
    "CheckupResult",
    "ProgressCallback",
    "Severity",
    "Stage",
    "StageOutcome",
    "SummaryRow",
]

Severity = Literal["ok", "info", "warning", "error"]
ProgressCallback = Callable[[float, str], None]
"""Called with the fraction of the current stage done (0..1) and a short description."""


@dataclass(frozen=True, slots=True)
class SummaryRow(ResultMixin):
    """One line of the checkup's summary table."""

    stage: str
    finding: str
    evidence: str
    treatment: str
    effect: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class StageOutcome(ResultMixin):
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
class CheckupResult(ResultMixin):
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
