"""Sections for shift correction: importance weights, label-shift weights, accuracy estimates."""

from __future__ import annotations

from typing import Any

import numpy as np

from nndoctor._results import to_jsonable
from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._section import Figure, Section, Status, to_sections
from nndoctor.shift.covariate import ImportanceWeightsResult
from nndoctor.shift.label import LabelShiftResult
from nndoctor.shift.performance import AccuracyEstimate, AccuracyEstimates

__all__: list[str] = []


def _fmt(value: float, digits: int = 3) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.{digits}g}"


def _weights_figure(result: ImportanceWeightsResult) -> Figure:
    fig, ax = new_figure()
    w = np.asarray(result.weights)
    positive = w[w > 0]
    if positive.size and positive.max() / max(positive.min(), 1e-300) > 100:
        bins: Any = np.logspace(np.log10(positive.min()), np.log10(positive.max()), 40)
        ax.set_xscale("log")
    else:
        bins = 40
    ax.hist(positive if positive.size else w, bins=bins, color="#4c72b0")
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("importance weight β(x) of source rows")
    ax.set_ylabel("rows")
    ax.set_title(
        f"{result.method}: ESS {result.effective_sample_size:.0f} of {result.n_source} "
        f"({100 * result.ess_ratio:.1f}%)"
    )
    return Figure(
        "Importance weights",
        figure_to_png_base64(fig),
        alt="histogram of importance weights with the effective sample size in the title",
    )


@to_sections.register
def _importance_sections(
    result: ImportanceWeightsResult, *, figures: bool = False
) -> list[Section]:
    status: Status = "warning" if result.low_overlap else "ok"
    if result.low_overlap:
        verdict = (
            f"Source and target barely overlap (ESS {result.effective_sample_size:.0f} of "
            f"{result.n_source} rows, domain AUC {_fmt(result.domain_auc)}): a few rows carry "
            "the weight and no weighting corrects a shift into regions the source never "
            "covered. Collect labeled target data."
        )
    else:
        verdict = (
            f"Weighting keeps an effective sample of {result.effective_sample_size:.0f} of "
            f"{result.n_source} source rows ({100 * result.ess_ratio:.0f}%); train or evaluate "
            "with these weights to correct the covariate shift."
        )
    table = (
        {"quantity": "method", "value": result.method},
        {"quantity": "effective sample size", "value": _fmt(result.effective_sample_size, 4)},
        {"quantity": "ESS / n", "value": _fmt(result.ess_ratio)},
        {"quantity": "domain AUC", "value": _fmt(result.domain_auc)},
        {"quantity": "low overlap", "value": str(result.low_overlap)},
        *(
            {"quantity": f"weight {k}", "value": _fmt(v)}
            for k, v in result.weight_quantiles.items()
        ),
    )
    payload = to_jsonable(result)
    payload.pop("weights", None)  # the per-row weights belong in a table file, not the page
    return [
        Section(
            "Importance weights (covariate shift)",
            status,
            verdict,
            table,
            (_weights_figure(result),) if figures else (),
            payload,
        )
    ]


def _prior_figure(result: LabelShiftResult) -> Figure:
    fig, ax = new_figure()
    k = result.n_classes
    x = np.arange(k)
    ax.bar(x - 0.2, result.source_prior, width=0.4, label="source p(y)", color="#4c72b0")
    q = result.target_prior
    has_ci = bool(np.all(np.isfinite(result.prior_ci_low)))
    yerr = (
        np.vstack([q - result.prior_ci_low, result.prior_ci_high - q]).clip(min=0)
        if has_ci
        else None
    )
    ax.bar(x + 0.2, q, width=0.4, yerr=yerr, capsize=2, label="estimated target q(y)",
           color="#dd8452")  # fmt: skip
    ax.set_xticks(x, [result.class_name(c) for c in range(k)])
    ax.set_xlabel("class")
    ax.set_ylabel("proportion")
    ax.set_title(f"Label shift ({result.method})")
    ax.legend()
    return Figure(
        "Source vs estimated target class proportions",
        figure_to_png_base64(fig),
        alt="bar chart of source and estimated target class proportions",
    )


@to_sections.register
def _label_sections(result: LabelShiftResult, *, figures: bool = False) -> list[Section]:
    tv = 0.5 * float(np.sum(np.abs(result.target_prior - result.source_prior)))
    has_ci = bool(np.all(np.isfinite(result.ci_low)))
    excluded = (
        [
            result.class_name(c)
            for c in range(result.n_classes)
            if not result.ci_low[c] <= 1.0 <= result.ci_high[c]
        ]
        if has_ci
        else []
    )
    ill = bool(np.isfinite(result.condition_number) and result.condition_number > 100)
    status: Status = "warning" if (excluded or ill or result.insufficient_data) else "info"
    verdict = (
        (
            f"INSUFFICIENT DATA: {result.n_target} target row(s) are too few to estimate the "
            "target class proportions; the numbers below are no evidence of a label shift. "
            "Pass more target rows. "
            if result.insufficient_data
            else ""
        )
        + f"Estimated class proportions moved by {tv:.3f} (total variation) from the source."
        + (
            f" Classes {excluded} have w = 1 outside their {100 * result.confidence:.0f}% "
            "interval: a real label shift; train with these weights or adjust predictions "
            "with LabelShiftEstimator.adjust."
            if excluded
            else ""
        )
        + (
            f" The confusion matrix is ill-conditioned ({_fmt(result.condition_number)})."
            if ill
            else ""
        )
    )
    rows = tuple(
        {
            "class": result.class_name(c),
            "source p(y)": f"{result.source_prior[c]:.3f}",
            "target q(y)": f"{result.target_prior[c]:.3f}",
            "w(y)": f"{result.weights[c]:.3f}",
            "w interval": (f"[{result.ci_low[c]:.3f}, {result.ci_high[c]:.3f}]" if has_ci else "-"),
        }
        for c in range(result.n_classes)
    )
    return [
        Section(
            f"Label shift ({result.method})",
            status,
            verdict,
            rows,
            (_prior_figure(result),) if figures else (),
            to_jsonable(result),
        )
    ]


def _estimate_row(est: AccuracyEstimate) -> dict[str, Any]:
    has_ci = np.isfinite(est.ci_low) and np.isfinite(est.ci_high)
    return {
        "method": est.method,
        "estimated accuracy": f"{est.accuracy:.3f}",
        "interval": f"[{est.ci_low:.3f}, {est.ci_high:.3f}]" if has_ci else "-",
        "source accuracy": f"{est.source_accuracy:.3f}",
        "assumes": est.assumption,
    }


@to_sections.register
def _accuracy_section(result: AccuracyEstimate, *, figures: bool = False) -> list[Section]:
    return [
        Section(
            "Estimated target accuracy",
            "info",
            f"{result.method}: {result.accuracy:.3f} (source {result.source_accuracy:.3f}).",
            (_estimate_row(result),),
            payload=to_jsonable(result),
        )
    ]


@to_sections.register
def _accuracies_section(result: AccuracyEstimates, *, figures: bool = False) -> list[Section]:
    accs = [e.accuracy for e in result.estimates]
    drop = result.source_accuracy - float(np.median(accs)) if accs else float("nan")
    status: Status = "warning" if np.isfinite(drop) and drop > 0.05 else "info"
    verdict = (
        f"Median estimate {result.source_accuracy - drop:.3f} against {result.source_accuracy:.3f}"
        " on the source; trust the estimate whose assumption matches the diagnosed shift."
        if accs
        else "No estimate could be made."
    )
    rows = tuple(_estimate_row(e) for e in result.estimates) + tuple(
        {
            "method": m,
            "estimated accuracy": "-",
            "interval": "-",
            "source accuracy": "-",
            "assumes": why,
        }
        for m, why in result.skipped.items()
    )
    return [Section("Estimated target accuracy", status, verdict, rows, (), to_jsonable(result))]
