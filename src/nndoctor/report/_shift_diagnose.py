"""Sections for the shift diagnosis, the concept tests, the stream monitor and adaptation."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from nndoctor._results import to_jsonable
from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._section import Figure, Section, Status, to_sections
from nndoctor.report._shift_tests import sampled_rows
from nndoctor.shift.adapt import AdaptationResult
from nndoctor.shift.concept import AccuracyDecomposition, AccuracyGapResult, ConditionalShiftResult
from nndoctor.shift.diagnose import ShiftDiagnosis
from nndoctor.shift.stream import MonitorReport

__all__: list[str] = []

_STATUS: dict[str, Status] = {
    "none": "ok",
    "covariate": "warning",
    "label": "warning",
    "concept": "error",
    "mixed": "error",
    "insufficient": "warning",
}


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    v = float(value)
    if math.isnan(v):
        return "-"
    if v != 0 and abs(v) < 10 ** (-digits):
        return f"{v:.1e}"
    return f"{v:.{digits}f}"


def _p(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


@to_sections.register
def _diagnosis_sections(result: ShiftDiagnosis, *, figures: bool = False) -> list[Section]:
    status = _STATUS[result.kind]
    if result.kind == "none" and not result.concept_ruled_out:
        status = "info"
    evidence = tuple(
        {
            "test": e.name,
            "statistic": _f(e.statistic),
            "p-value": _p(e.pvalue),
            "level": _f(e.level, 4),
            "significant": "yes" if e.significant else "no",
            "detail": e.detail,
        }
        for e in result.evidence
    )
    verdict = f"Kind: {result.kind}. {result.explanation}"
    if result.sampled_from is not None:
        verdict += " " + sampled_rows(result.n_source, result.n_target, result.sampled_from)
    main = Section("Shift diagnosis", status, verdict, evidence, payload=to_jsonable(result))
    # one table of two columns: how to apply the treatment, then the accuracies it is judged by
    acc_rows = (
        {"what": "accuracy, source (held-out check set)", "value": _f(result.source_accuracy)},
        {
            "what": f"accuracy, target, estimated without labels ({result.estimation_method})",
            "value": _f(result.estimated_target_accuracy),
        },
        {
            "what": f"accuracy, target, observed on {result.n_target_labels} labeled rows",
            "value": _f(result.observed_target_accuracy),
        },
    )
    rec = result.recommendation
    treat = Section(
        "Recommended treatment",
        status,
        f"{rec.treatment}. Estimated effect: {rec.estimated_effect}.",
        ({"what": "how to apply it", "value": rec.how}, *acc_rows),
    )
    lw = result.label_weights
    if lw is None:  # too few rows to fit anything
        return [main, treat]
    classes = result.classes or tuple(str(k) for k in range(len(lw.weights)))
    weight_rows = tuple(
        {
            "class": classes[k],
            "source prior": _f(lw.source_prior[k]),
            "estimated target prior": _f(lw.target_prior[k]),
            "w(y)": _f(lw.weights[k]),
            "w 95% interval": (
                "-"
                if math.isnan(float(lw.ci_low[k]))
                else f"[{_f(lw.ci_low[k])}, {_f(lw.ci_high[k])}]"
            ),
        }
        for k in range(len(lw.weights))
    )
    iw = result.importance_weights
    iw_text = (
        ""
        if iw is None
        else (
            f" Importance weights β(x): ESS {iw.effective_sample_size:.0f} of {iw.n_source} "
            f"({iw.ess_ratio:.2f}), domain AUC {iw.domain_auc:.3f}"
            + ("; LOW OVERLAP: weighting cannot correct this shift." if iw.low_overlap else ".")
        )
    )
    weights = Section(
        "Estimated weights",
        "info",
        "Label-shift weights w(y) = q(y)/p(y) (EM with bias-corrected calibration)." + iw_text,
        weight_rows,
    )
    sections = [main, treat, weights]
    if result.decomposition is not None:
        sections.extend(_decomposition_sections(result.decomposition, figures=False))
    if figures:
        figs = [_prior_figure(result, classes), _evidence_figure(result)]
        if result.decomposition is not None:
            figs.append(_decomposition_figure(result.decomposition))
        sections[0] = Section(
            main.title, main.status, main.verdict, main.table, tuple(figs), main.payload
        )
    return sections


def _prior_figure(result: ShiftDiagnosis, classes: tuple[str, ...]) -> Figure:
    lw = result.label_weights
    fig, ax = new_figure(width=6.0, height=3.2)
    x = np.arange(len(classes))
    ax.bar(x - 0.2, lw.source_prior, width=0.4, label="source prior p(y)")
    ax.bar(x + 0.2, lw.target_prior, width=0.4, label="estimated target prior q(y)")
    ax.set_xticks(x, classes)
    ax.set_ylabel("proportion")
    ax.legend()
    return Figure("Class priors", figure_to_png_base64(fig), "source vs estimated target prior")


def _evidence_figure(result: ShiftDiagnosis) -> Figure:
    fig, ax = new_figure(width=6.0, height=3.0)
    names = [e.name for e in result.evidence]
    logp = [-math.log10(max(e.pvalue, 1e-300)) if not math.isnan(e.pvalue) else 0.0
            for e in result.evidence]  # fmt: skip
    levels = [-math.log10(e.level) for e in result.evidence]
    y = np.arange(len(names))
    ax.barh(y, np.minimum(logp, 50.0), color=["C3" if e.significant else "C0"
                                              for e in result.evidence])  # fmt: skip
    ax.scatter(levels, y, marker="|", s=200, color="k", label="level")
    ax.set_yticks(y, names)
    ax.set_xlabel("-log10 p-value (capped at 50)")
    ax.legend()
    return Figure("Evidence", figure_to_png_base64(fig), "p-values of the tests vs their levels")


def _decomposition_figure(d: AccuracyDecomposition) -> Figure:
    fig, ax = new_figure(width=5.0, height=3.0)
    parts = [d.total_drop, d.covariate_part, d.concept_part]
    cis = [d.total_ci, d.covariate_ci, d.concept_ci]
    err = np.array([[p - c[0] for p, c in zip(parts, cis, strict=True)],
                    [c[1] - p for p, c in zip(parts, cis, strict=True)]])  # fmt: skip
    ax.bar(["total", "P(x)", "P(y|x)"], parts, yerr=np.maximum(err, 0.0), capsize=4)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_ylabel("accuracy lost")
    return Figure("Accuracy drop", figure_to_png_base64(fig), "accuracy drop decomposition")


@to_sections.register
def _decomposition_sections(
    result: AccuracyDecomposition, *, figures: bool = False
) -> list[Section]:
    rows = (
        {"part": "total drop", "value": _f(result.total_drop), "interval": _ci(result.total_ci)},
        {
            "part": "due to P(x) (inputs moved)",
            "value": _f(result.covariate_part),
            "interval": _ci(result.covariate_ci),
        },
        {
            "part": "due to P(y|x) (answers changed)",
            "value": _f(result.concept_part),
            "interval": _ci(result.concept_ci),
        },
    )
    verdict = (
        f"Accuracy {result.source_accuracy:.3f} on the source, {result.target_accuracy:.3f} on "
        f"the labeled target rows ({result.predicted_target_accuracy:.3f} expected there with the "
        "source's P(y|x))."
    )
    figs = (_decomposition_figure(result),) if figures else ()
    return [
        Section("Accuracy drop decomposition", "info", verdict, rows, figs, to_jsonable(result))
    ]


def _ci(ci: tuple[float, float]) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


@to_sections.register
def _gap_sections(result: AccuracyGapResult, *, figures: bool = False) -> list[Section]:
    status: Status = "error" if result.concept_shift_detected else "ok"
    verdict = (
        f"Observed target accuracy {_f(result.observed_accuracy)} vs "
        f"{_f(result.predicted_accuracy)} predicted (margin {_f(result.margin)}): "
        + ("concept shift." if result.concept_shift_detected else "no evidence of concept shift.")
    )
    rows = tuple({"field": k, "value": str(v)} for k, v in to_jsonable(result).items())
    return [Section("Accuracy gap test", status, verdict, rows, payload=to_jsonable(result))]


@to_sections.register
def _conditional_sections(
    result: ConditionalShiftResult, *, figures: bool = False
) -> list[Section]:
    status: Status = "error" if result.concept_shift_detected else "ok"
    verdict = f"z = {_f(result.statistic, 2)}, p = {_p(result.pvalue)}: " + (
        "the label tells the domains apart beyond the input: P(y|x) changed."
        if result.concept_shift_detected
        else "no evidence that P(y|x) changed."
    )
    rows = tuple({"field": k, "value": str(v)} for k, v in to_jsonable(result).items())
    return [
        Section("Conditional test of P(y|x)", status, verdict, rows, payload=to_jsonable(result))
    ]


@to_sections.register
def _monitor_sections(result: MonitorReport, *, figures: bool = False) -> list[Section]:
    status: Status = _STATUS[result.kind] if result.drift_detected else "ok"
    if result.drift_detected:
        first = result.changes[0]
        when = first.time if first.time is not None else f"batch {first.batch}"
        verdict = (
            f"{len(result.changes)} change(s); the first at {when} (row {first.sample}): "
            f"{first.kind} — {first.reason}."
        )
    else:
        verdict = f"No change in {result.n_samples} rows ({result.n_batches} batches)."
    rows = tuple(
        {
            "time": c.time if c.time is not None else str(c.batch),
            "batch": c.batch,
            "row": c.sample,
            "kind": c.kind,
            "signals": ", ".join(c.signals),
            "why": c.reason,
        }
        for c in result.changes
    )
    figs: tuple[Figure, ...] = ()
    if figures:
        fig, ax = new_figure(width=6.4, height=3.0)
        err = np.asarray(result.error_rate, dtype=float)
        ax.plot(np.arange(err.size), err, label="error rate per batch")
        for c in result.changes:
            ax.axvline(c.batch, color="C3", ls="--", lw=1)
        ax.set_xlabel("batch")
        ax.set_ylabel("error rate")
        ax.legend()
        figs = (Figure("Error rate", figure_to_png_base64(fig), "error rate and changes"),)
    events = Section(
        "Monitor events",
        "info",
        f"{len(result.events)} detector firings / rejected batch tests (batch tests at "
        f"family-wise level {result.alpha} with {result.spending} spending; error-rate changes "
        f"need {result.min_votes} of {len(result.detectors)} river detectors).",
        tuple(
            {
                "batch": e.batch,
                "row": e.sample,
                "signal": e.signal,
                "detector": e.detector,
                "p-value": _p(e.pvalue),
                "level": _f(e.level, 6),
            }
            for e in result.events
        ),
    )
    return [Section("Stream monitor", status, verdict, rows, figs, to_jsonable(result)), events]


@to_sections.register
def _adaptation_sections(result: AdaptationResult, *, figures: bool = False) -> list[Section]:
    status: Status = "warning" if result.detection_batches else "ok"
    caught = (
        f"{len(result.changes)} change(s) declared, the first at batch "
        f"{result.detection_batches[0]} ({result.changes[0].kind if result.changes else '?'}); "
        f"retrained after batch(es) {', '.join(map(str, result.retrain_batches)) or '-'}. "
        if result.detection_batches
        else "No change declared. "
    )
    verdict = caught + (
        f"Accuracy {_f(result.accuracy_before)} before the change; after retraining "
        f"({result.strategy}) {_f(result.accuracy_after)} vs {_f(result.baseline_accuracy_after)}"
        f" without: recovery {_f(result.recovery)}"
        + (
            f", back within tolerance after {result.batches_to_recover} batch(es)."
            if result.batches_to_recover is not None
            else "."
        )
    )
    rows = tuple(
        {"batch": i, "adapted": _f(a), "frozen": _f(b)}
        for i, (a, b) in enumerate(zip(result.accuracy, result.baseline_accuracy, strict=True))
    )
    figs: tuple[Figure, ...] = ()
    if figures:
        fig, ax = new_figure(width=6.4, height=3.0)
        ax.plot(result.accuracy, label="adapted")
        ax.plot(result.baseline_accuracy, label="frozen")
        for b in result.detection_batches:
            ax.axvline(b, color="C3", ls="--", lw=1)
        ax.set_xlabel("batch")
        ax.set_ylabel("accuracy")
        ax.legend()
        figs = (Figure("Recovery", figure_to_png_base64(fig), "accuracy with and without"),)
    sections = [Section("Adaptation to drift", status, verdict, rows, figs, to_jsonable(result))]
    if result.retrain_batches:  # the monitor restarts after each retraining: say so
        since = f" since the last retraining (after batch {result.retrain_batches[-1]})"
        monitor, events = _monitor_sections(result.monitor, figures=False)
        if not result.monitor.drift_detected:
            monitor = replace(
                monitor, verdict=f"No further change in {result.monitor.n_samples} rows "
                f"({result.monitor.n_batches} batches){since}."
            )  # fmt: skip
        sections += [
            replace(monitor, title="Stream monitor" + since),
            replace(events, title="Monitor events" + since),
        ]
    else:
        sections.extend(_monitor_sections(result.monitor, figures=False))
    return sections
