"""The checkup's shift stage: each shift scenario diagnosed, truth against diagnosis.

For the three batch scenarios (cartoon digits: covariate; flu season: label; soda by region:
concept) :func:`nndoctor.shift.diagnose` runs twice — with no target labels and with a few
hundred — so the table shows both what unlabeled data can tell and what a handful of labels
adds (concept shift is invisible without them). The drifting stream is replayed through a
:class:`~nndoctor.shift.ShiftMonitor` with retraining on a recent window
(:func:`~nndoctor.shift.adapt_on_drift`), which shows when the drift is caught and how much
accuracy the retraining wins back. With ``--source/--target/--label`` the user's tables are
diagnosed instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nndoctor._results import ResultMixin
from nndoctor.checkup._types import CheckupContext, Severity, Stage, StageOutcome, SummaryRow

if TYPE_CHECKING:
    from nndoctor.checkup._inputs import UserData

__all__ = ["SHIFT_STAGE", "ShiftScenarioRow", "ShiftScenarioTable", "shift_stage"]

TARGET_LABELS = 200
"""Labeled target rows given to the diagnosis in the "with labels" run."""
STREAM_BATCH = 200
"""Rows per batch when the drifting stream is replayed."""


@dataclass(frozen=True, slots=True)
class ShiftScenarioRow(ResultMixin):
    """One scenario: the truth, the diagnoses without and with target labels, the treatment."""

    scenario: str
    truth: str
    diagnosis_without_labels: str
    diagnosis_with_labels: str
    right: bool
    evidence: str
    treatment: str
    effect: str


@dataclass(frozen=True, slots=True)
class ShiftScenarioTable(ResultMixin):
    """Truth vs diagnosis for every shift scenario."""

    rows: tuple[ShiftScenarioRow, ...]
    n_target_labels: int


def _labeled_subset(y: Any, n: int, rng: np.random.Generator) -> Any:
    out = np.full(len(y), np.nan)
    idx = rng.choice(len(y), size=min(n, len(y)), replace=False)
    out[idx] = np.asarray(y, dtype=np.float64)[idx]
    return out


def _evidence_text(d: Any) -> str:
    parts = []
    for e in d.evidence:
        mark = "!" if e.significant else ""
        parts.append(f"{e.name} p={e.pvalue:.2g}{mark}")
    return "; ".join(parts)


def _no_tables(stage: str, title: str, what: str) -> StageOutcome:
    """The user gave a model and no tables: nothing to compare (the demo data are not theirs)."""
    row = SummaryRow(
        stage=stage,
        finding=f"no {what}: no tables given",
        evidence="no --source/--target given",
        treatment="pass --source, --target and --label to compare your training and deployment "
        "data",
        effect="-",
        severity="info",
    )
    return StageOutcome(stage, title, (row,), ())


def insufficient_data_row(stage: str, n_target: int, source: str, target: str) -> SummaryRow:
    """The verdict when the target is too small to test: a warning, never "no shift"."""
    from nndoctor.checkup._inputs import MIN_TARGET_ROWS

    return SummaryRow(
        stage=stage,
        finding="insufficient data: the shift could not be tested",
        evidence=f"{target} has {n_target} row(s); the tests need at least {MIN_TARGET_ROWS} "
        f"(and {source} its labeled rows)",
        treatment=f"collect at least {MIN_TARGET_ROWS} deployment rows and run the checkup again",
        effect="-",
        severity="warning",
    )


def user_tables(ctx: CheckupContext, stage: str, title: str, what: str) -> UserData | StageOutcome:
    """The user's tables, or the stage's outcome when they cannot be tested: none given
    (:func:`_no_tables`), or fewer than ``MIN_TARGET_ROWS`` target rows
    (:func:`insufficient_data_row`)."""
    from nndoctor.checkup._inputs import MIN_TARGET_ROWS

    data = ctx.data
    if data is None:
        return _no_tables(stage, title, what)
    n_target = data.X_target.shape[0]
    if n_target < MIN_TARGET_ROWS:
        row = insufficient_data_row(stage, n_target, data.source, data.target)
        return StageOutcome(stage, title, (row,), ())
    return data


def user_feature_frames(data: Any) -> tuple[Any, Any]:
    """The two tables' feature columns as frames with the user's column names: numbers
    standardized with the source's mean and standard deviation (the diagnosis's classifiers
    then judge the same whatever the columns' units), text one-hot encoded with the categories
    of both tables (so the columns agree)."""
    import pandas as pd

    src, tgt = data.frames
    columns = [c for c in src.columns if c != data.label]
    pooled = pd.concat([src[columns], tgt[columns]], ignore_index=True)
    numeric = list(data.features)
    pooled[numeric] = (pooled[numeric].astype(np.float64) - data.mean) / data.scale
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(pooled[c])]
    if text:
        pooled = pd.get_dummies(pooled, columns=text, dtype=float)
    pooled = pooled.astype(np.float64)
    pooled.columns = [str(c) for c in pooled.columns]
    return pooled.iloc[: len(src)].reset_index(drop=True), pooled.iloc[len(src) :].reset_index(
        drop=True
    )


def _untestable(d: Any) -> bool:
    """True when no detection test produced a p-value (NaN everywhere): no evidence either way."""
    return bool(d.evidence) and all(not math.isfinite(e.pvalue) for e in d.evidence)


def _user_stage(ctx: CheckupContext) -> StageOutcome:
    from nndoctor.checkup._inputs import load_user_model
    from nndoctor.shift import diagnose

    data = user_tables(ctx, "shift", "Distribution shift", "shift diagnosis")
    if isinstance(data, StageOutcome):
        return data
    ctx.progress(0.0, "reading the tables")
    Xs, Xt = user_feature_frames(data)
    yt = np.where(data.y_target < 0, np.nan, data.y_target.astype(np.float64))
    # A factory builds an untrained network: its outputs say nothing about the data, so the
    # user's network is used only with trained --weights (on the numeric columns it takes);
    # otherwise diagnose fits its default classifier on a split of the source.
    model = None
    if ctx.model_spec and ctx.weights and (ctx.input_shape is None or len(ctx.input_shape) == 1):
        model = load_user_model(ctx.model_spec, weights=ctx.weights, seed=ctx.random_state)
        Xs, Xt = Xs[list(data.features)], Xt[list(data.features)]
    d = diagnose(
        Xs, data.y_source, Xt, yt, model=model, random_state=ctx.random_state,
        progress=lambda f, t: ctx.progress(0.1 + 0.9 * f, t), names=data.names,
    )  # fmt: skip
    if _untestable(d):
        row = insufficient_data_row("shift", data.X_target.shape[0], data.source, data.target)
        return StageOutcome("shift", "Distribution shift", (row,), (d,))
    sev: Severity = "info" if d.kind == "none" else "warning"
    row = SummaryRow(
        stage="shift",
        finding=f"{d.kind} shift" if d.kind != "none" else "no shift detected",
        evidence=_evidence_text(d) + (f"; {data.column_note}" if data.column_note else ""),
        treatment=d.recommendation.treatment,
        effect=d.recommendation.estimated_effect,
        severity=sev,
    )
    return StageOutcome("shift", "Distribution shift", (row,), (d,))


def shift_stage(ctx: CheckupContext) -> StageOutcome:
    """Run the shift stage (the scenarios, or the user's tables when given).

    BLAS runs single-threaded here: the stage fits many small models, for which extra threads
    only add overhead (three times the CPU time on a busy two-core machine).
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no stubs

    with threadpool_limits(1):
        return _shift_stage(ctx)


def _shift_stage(ctx: CheckupContext) -> StageOutcome:
    if ctx.user_mode:
        from nndoctor.checkup._inputs import with_user_data

        return _user_stage(with_user_data(ctx))
    from sklearn.linear_model import LogisticRegression

    from nndoctor.scenarios import cartoon_digits, drifting_stream, flu_season, soda_regions
    from nndoctor.shift import adapt_on_drift, diagnose

    rng = np.random.default_rng(ctx.random_state)
    rows: list[ShiftScenarioRow] = []
    summary: list[SummaryRow] = []
    results: list[Any] = []
    labels: list[str] = [""]  # the scenario table needs none
    makers: tuple[Callable[..., Any], ...] = (cartoon_digits, flu_season, soda_regions)
    for i, make in enumerate(makers):
        ctx.progress(i / (len(makers) + 1), f"diagnosing {make.__name__}")
        sc = make(random_state=ctx.random_state)
        Xs, ys, Xt, yt = sc.arrays()
        blind = diagnose(Xs, ys, Xt, random_state=ctx.random_state)
        seen = diagnose(
            Xs, ys, Xt, _labeled_subset(yt, TARGET_LABELS, rng), random_state=ctx.random_state
        )
        right = seen.kind == sc.kind
        rec = seen.recommendation
        rows.append(
            ShiftScenarioRow(
                scenario=sc.name,
                truth=sc.kind,
                diagnosis_without_labels=blind.kind
                + ("" if blind.concept_ruled_out else " (concept not ruled out)"),
                diagnosis_with_labels=seen.kind,
                right=right,
                evidence=_evidence_text(seen),
                treatment=rec.action,
                effect=rec.estimated_effect,
            )
        )
        summary.append(
            SummaryRow(
                stage="shift",
                finding=f"{sc.name}: {seen.kind} shift (truth: {sc.kind})",
                evidence=_evidence_text(seen),
                treatment=rec.treatment,
                effect=rec.estimated_effect,
                severity="warning" if right else "error",
            )
        )
        results.append(seen)
        labels.append(sc.name)

    ctx.progress(len(makers) / (len(makers) + 1), "replaying the drifting stream")
    stream = drifting_stream(random_state=ctx.random_state)
    feats = list(stream.features)
    src = stream.source
    tgt = stream.target
    Xt, yt = tgt[feats].to_numpy(), tgt[stream.label].to_numpy()
    batches = [
        (Xt[a : a + STREAM_BATCH], yt[a : a + STREAM_BATCH])
        for a in range(0, len(tgt), STREAM_BATCH)
    ]
    adapt = adapt_on_drift(
        LogisticRegression(),
        (src[feats].to_numpy(), src[stream.label].to_numpy()),
        batches,
        min_labels=STREAM_BATCH,
        window=2 * STREAM_BATCH,
    )
    t0 = int(tgt[stream.time].iloc[0]) if stream.time else 0
    start = stream.truth.get("drift_start_t", float("nan"))
    first = adapt.detection_batches[0] if adapt.detection_batches else None
    when = "not detected" if first is None else f"t = {t0 + first * STREAM_BATCH}"
    kind = adapt.changes[0].kind if adapt.changes else "none"
    effect = (
        f"accuracy after retraining {adapt.accuracy_after:.3f} vs "
        f"{adapt.baseline_accuracy_after:.3f} frozen"
        if math.isfinite(adapt.accuracy_after)
        else "-"
    )
    right = first is not None and kind == stream.kind
    rows.append(
        ShiftScenarioRow(
            scenario=stream.name,
            truth=f"{stream.kind} (gradual from t = {start})",
            diagnosis_without_labels="-",
            diagnosis_with_labels=f"{kind}, caught at {when}",
            right=right,
            evidence=f"{len(adapt.changes)} change(s) declared by the monitor",
            treatment="retrain on recent window",
            effect=effect,
        )
    )
    summary.append(
        SummaryRow(
            stage="shift",
            finding=f"{stream.name}: {kind} drift caught at {when} (truth: from t = {start})",
            evidence=f"{len(adapt.retrain_batches)} retraining(s)",
            treatment="retrain on a recent window when the monitor fires",
            effect=effect,
            severity="warning" if right else "error",
        )
    )
    results.append(adapt)
    labels.append(stream.name)
    ctx.progress(1.0, "done")
    table = ShiftScenarioTable(tuple(rows), TARGET_LABELS)
    return StageOutcome(
        "shift", "Distribution shift", tuple(summary), (table, *results), tuple(labels)
    )


SHIFT_STAGE = Stage("shift", "Distribution shift", shift_stage)
