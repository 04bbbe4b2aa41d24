"""Sections for the two-sample tests of :mod:`nndoctor.shift.two_sample`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nndoctor._results import to_jsonable
from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._section import Figure, Section, Status, to_sections
from nndoctor.shift._bbsd import BBSDResult
from nndoctor.shift._classifier_test import ClassifierTestResult
from nndoctor.shift._common import TwoSampleResult
from nndoctor.shift._suite import ShiftTestReport
from nndoctor.shift._univariate import FeatureDrift, FeatureTestResult

__all__: list[str] = []

#: Rows of the per-feature table shown (the JSON payload keeps all).
MAX_FEATURE_ROWS = 30


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "nan"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _status(drift: bool, pvalue: float) -> Status:
    if not math.isfinite(pvalue):
        return "warning"  # the test could not run: insufficient data, never a green "ok"
    return "warning" if drift else "ok"


def _outcome(drift: bool, pvalue: float) -> str:
    if drift:
        return "the distributions differ."
    if not math.isfinite(pvalue):
        return "insufficient data: the test could not run (too few rows)."
    return "no evidence of a change."


def _null_figure(result: TwoSampleResult) -> Figure | None:
    null = result.null_distribution
    if null is None or null.size == 0:
        return None
    fig, ax = new_figure()
    ax.hist(null, bins=40, color="#8aa", label="permutation null")
    ax.axvline(
        result.statistic, color="#c33", lw=2, label=f"observed MMD² (p = {_p(result.pvalue)})"
    )
    ax.set_xlabel("MMD² under random splits")
    ax.set_ylabel("permutations")
    ax.legend(loc="best", fontsize=8)
    return Figure(
        "MMD permutation null and the observed statistic",
        figure_to_png_base64(fig),
        alt="histogram of the permuted MMD statistics with the observed value marked",
    )


@to_sections.register
def _two_sample_sections(result: TwoSampleResult, *, figures: bool = False) -> list[Section]:
    verdict = (
        f"{result.method}: MMD² = {result.statistic:.3g}, p = {_p(result.pvalue)} "
        f"({result.n_source} vs {result.n_target} rows) — "
        + _outcome(result.drift_detected, result.pvalue)
    )
    rows: list[dict[str, Any]] = [
        {"quantity": "statistic", "value": f"{result.statistic:.4g}"},
        {"quantity": "p-value", "value": _p(result.pvalue)},
        {"quantity": "permutations", "value": str(result.n_permutations or "-")},
    ]
    rows += [
        {"quantity": k, "value": f"{v:.4g}" if isinstance(v, float) else str(v)}
        for k, v in result.details.items()
    ]
    figs: tuple[Figure, ...] = ()
    if figures:
        fig = _null_figure(result)
        figs = (fig,) if fig is not None else ()
    return [
        Section(
            "Two-sample test (MMD)",
            _status(result.drift_detected, result.pvalue),
            verdict,
            tuple(rows),
            figs,
            payload=to_jsonable(result),
        )
    ]


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _drift_label(f: FeatureDrift) -> str:
    if f.distribution_drifted and f.missingness_drifted:
        return "DRIFT (+missing)"
    if f.missingness_drifted:
        return "DRIFT (missing)"
    if f.drifted:
        return "DRIFT"
    negligible = f.negligible or (f.missingness is not None and f.missingness.negligible)
    if negligible:
        return "negligible"
    return "untested" if not math.isfinite(f.pvalue) else "-"


def _missing_cells(f: FeatureDrift, policy: str) -> dict[str, str]:
    t = f.missingness
    if t is None:
        return {"missing": "-", "p miss.": "-"}
    rate = f"{100 * t.fraction_source:.1f}→{_percent(t.fraction_target)}"
    if t.test == "none":
        how = "in χ²" if policy == "category" and f.kind == "categorical" else "not tested"
        return {"missing": rate, "p miss.": how}
    return {"missing": rate, "p miss.": _p(t.adjusted_pvalue)}


def _feature_rows(result: FeatureTestResult) -> tuple[dict[str, Any], ...]:
    ranked = result.ranked()
    if result.has_missing:  # a column flagged only for its missing rate has no effect size to rank
        ranked = sorted(ranked, key=lambda f: not f.drifted)
    rows = []
    for f in ranked[:MAX_FEATURE_ROWS]:
        lo, hi = f.effect_ci
        extra = (
            f"W/sd {f.effects.get('wasserstein_std', float('nan')):.3g}"
            if f.kind == "numeric"
            else ""
        )
        row = {
            "feature": f.name,
            "test": f.test,
            "effect": f"{f.effect:.3f} [{lo:.3f}, {hi:.3f}]",
            "psi": f"{f.effects.get('psi', float('nan')):.3f}",
            "other": extra,
            "p (adj.)": _p(f.adjusted_pvalue),
        }
        if result.has_missing:  # two more columns; W/sd stays in the JSON and the HTML payload
            del row["other"]
            row.update(_missing_cells(f, result.missing))
        row["drift"] = _drift_label(f)
        rows.append(row)
    return tuple(rows)


def _missing_verdict(result: FeatureTestResult) -> str:
    with_missing = [f for f in result.features if f.missingness is not None]
    tested = [f for f in with_missing if f.missingness and f.missingness.test != "none"]
    moved = [f.name for f in with_missing if f.missingness_drifted]
    text = f" {len(with_missing)} column(s) have missing values"
    if not tested:
        how = "missing counted as a category" if result.missing == "category" else "not tested"
        return text + f" (their observed values were tested; missing rates {how})."
    text += (
        f"; their missing rates were tested too (p miss., adjusted in one {result.correction} "
        f"family with the {len(result.features)} distribution test(s))"
    )
    if moved:
        shown = ", ".join(moved[:5]) + (", ..." if len(moved) > 5 else "")
        return text + f": the missing rate changed in {len(moved)} ({shown})."
    return text + ": no missing rate changed."


@to_sections.register
def _feature_sections(result: FeatureTestResult, *, figures: bool = False) -> list[Section]:
    n = len(result.features)
    neg = sum(f.negligible for f in result.features)
    verdict = (
        f"{result.n_drifted} of {n} feature(s) drifted ({result.method}, {result.correction} "
        f"correction, α = {result.alpha:g}); overall p = {_p(result.pvalue)}."
    )
    if neg:
        verdict += f" {neg} significant change(s) fall below min_effect = {result.min_effect:g}."
    untested = [f.name for f in result.features if not math.isfinite(f.pvalue)]
    if untested:
        shown = ", ".join(untested[:5]) + (", ..." if len(untested) > 5 else "")
        verdict += (
            f" Insufficient data: {len(untested)} feature(s) could not be tested (fewer than 2 "
            f"observed values per table): {shown}."
        )
    if result.has_missing:
        verdict += _missing_verdict(result)
    if n > MAX_FEATURE_ROWS:
        verdict += f" Showing the {MAX_FEATURE_ROWS} largest effects."
    return [
        Section(
            "Per-feature drift (sorted by effect size)",
            _status(result.drift_detected, result.pvalue if not untested else math.nan),
            verdict,
            _feature_rows(result),
            payload=to_jsonable(result),
        )
    ]


def sampled_rows(n_source: int, n_target: int, tables: tuple[int, int]) -> str:
    """The sentence that says a result came from a random sample of each (Dask) table."""
    return (
        f"On a random sample of {n_source:,} of {tables[0]:,} source and {n_target:,} of "
        f"{tables[1]:,} target rows."
    )


@to_sections.register
def _classifier_sections(result: ClassifierTestResult, *, figures: bool = False) -> list[Section]:
    verdict = (
        f"A {result.model} tells source from target with out-of-fold AUC "
        f"{result.statistic:.3f}; p = {_p(result.pvalue)} ({result.combine} over "
        f"{result.n_splits} folds)."
    )
    if any(result.n_missing):
        verdict += (
            f" Missing values ({result.n_missing[0]} source and {result.n_missing[1]} target "
            "cells) were part of what it saw."
        )
    if result.sampled_from is not None:
        verdict += " " + sampled_rows(result.n_source, result.n_target, result.sampled_from)
    top = list(result.feature_importances.items())[:10]
    rows = tuple(
        {"feature": k, f"importance ({result.importance_kind})": f"{v:.4g}"} for k, v in top
    )
    return [
        Section(
            "Classifier two-sample test",
            _status(result.drift_detected, result.pvalue),
            verdict,
            rows,
            payload=to_jsonable(result),
        )
    ]


@to_sections.register
def _bbsd_sections(result: BBSDResult, *, figures: bool = False) -> list[Section]:
    verdict = (
        f"Model outputs: χ² on predicted classes p = {_p(result.chi2_pvalue)}, per-class KS "
        f"(Bonferroni) p = {_p(result.ks_pvalue)}; overall p = {_p(result.pvalue)}."
    )
    if result.ks_error > 0:  # Dask: KS from quantile sketches
        verdict += (
            f" KS distances from quantile sketches, each within ±{result.ks_error:.2g} of the "
            "exact one (p-values conservative)."
        )
    ms, mt = max(1, result.n_source), max(1, result.n_target)
    rows = tuple(
        {
            "class": c,
            "source share": f"{result.source_counts[c] / ms:.3f}",
            "target share": f"{result.target_counts[c] / mt:.3f}",
            "KS": f"{result.ks_statistics[c]:.3f}",
            "KS p": _p(float(result.ks_pvalues[c])),
        }
        for c in range(result.n_classes)
    )
    return [
        Section(
            "Black-box shift detection (model outputs)",
            _status(result.drift_detected, result.pvalue),
            verdict,
            rows,
            payload=to_jsonable(result),
        )
    ]


def _distribution_figure(name: str, data: dict[str, list[float]]) -> Figure:
    fig, ax = new_figure(width=5.0, height=3.0)
    src = np.asarray(data["source"])
    tgt = np.asarray(data["target"])
    lo = float(min(src.min(), tgt.min()))
    hi = float(max(src.max(), tgt.max()))
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 40)
    ax.hist(src, bins=bins, density=True, alpha=0.5, label="source", color="#36c")
    ax.hist(tgt, bins=bins, density=True, alpha=0.5, label="target", color="#c63")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=8)
    return Figure(f"Distribution of {name}", figure_to_png_base64(fig), alt=f"histograms of {name}")


@to_sections.register
def _suite_sections(result: ShiftTestReport, *, figures: bool = False) -> list[Section]:
    rows = []
    parts: list[Any] = [result.features, result.mmd, result.classifier, result.bbsd]
    names = ["per-feature", "MMD", "classifier", "BBSD"]
    short = ["features", "mmd", "c2st", "bbsd"]
    held = False  # a test that rejects on its own but not after the suite's correction
    for name, key, part in zip(names, short, parts, strict=True):
        if part is not None:
            if key in result.rejected:
                drift = "DRIFT"
            elif not math.isfinite(part.pvalue):
                drift = "untested"
            elif part.drift_detected:
                drift, held = "- (alone only)", True
            else:
                drift = "-"
            rows.append(
                {
                    "test": name,
                    "statistic": f"{part.statistic:.4g}",
                    "p-value": _p(part.pvalue),
                    "drift": drift,
                }
            )
    head = f"{result.n_source} source vs {result.n_target} target rows: "
    untested = ", ".join(result.untested[:6]) + (", ..." if len(result.untested) > 6 else "")
    if result.drift_detected:
        verdict = head + "the target distribution differs from the source."
        if result.untested:
            verdict += f" Not tested (too little data): {untested}."
    elif result.insufficient_data:
        verdict = (
            f"INSUFFICIENT DATA. {head}no test found a change, but {untested} could not be "
            "tested (too few rows or observed values), so this is no evidence of no shift; "
            "pass more rows"
        )
    else:
        verdict = head + "no test found a change."
    if held:
        verdict += (
            f" A test marked 'alone only' rejects at alpha on its own but not after Holm's "
            f"correction over the {len(rows)} tests, which keeps the verdict's false-alarm "
            "rate at alpha."
        )
    figs: tuple[Figure, ...] = ()
    if figures and result.samples:
        figs = tuple(_distribution_figure(k, v) for k, v in result.samples.items())
    summary = Section(
        "Shift tests",
        "warning" if result.drift_detected or result.insufficient_data else "ok",
        verdict,
        tuple(rows),
        figs,
        payload={
            "methods": list(result.methods),
            "drift_detected": result.drift_detected,
            "rejected": list(result.rejected),
            "insufficient_data": result.insufficient_data,
        },
    )
    out = [summary]
    for part in parts:
        if part is not None:
            out.extend(to_sections(part, figures=figures))
    return out
