"""``compare_samples`` on Dask collections: the in-memory plan, each test on its Dask engine.

:func:`nndoctor.shift.compare_samples` hands Dask collections here. The tests that run are the
in-memory ones (:func:`nndoctor.shift._suite._plan`): ``method="auto"`` runs the per-feature
tests, the MMD test on the numeric columns (rows with every numeric value present, as in memory)
and BBSD when a model is given; ``"ks"``, ``"chi2"``, ``"mmd"``, ``"c2st"`` and ``"bbsd"`` one
test each. The report is the same :class:`~nndoctor.shift.ShiftTestReport` with the same
``methods``, each test seeded as in memory; what differs is how each test runs, stated in its
own result:

- ``features``: merged partition summaries (:func:`nndoctor.shift._dask.feature_test`): counts
  and χ² tests exact, KS distances from KLL sketches within ``statistic_error`` (per feature),
  ``engine="dask"``;
- ``mmd``: the random-feature test (``method="mmd-rff"``, :mod:`nndoctor.shift._dask_mmd`)
  where memory runs the permutation test; the bandwidth and column scales from a sample of
  about 1,000 rows per table (``details["bandwidth_sample"]``, ``details["engine"]``);
- ``c2st``: the in-memory classifier test on a random sample of each table
  (``sampled_from`` states the tables' row counts, ``n_source``/``n_target`` the sample's);
- ``bbsd``: the model runs on the workers; predicted-class counts and χ² exact, the KS parts
  within ``ks_error`` (``engine="dask"``).

Besides the tests' own passes, one small pass per table counts its rows, the observed values
of each numeric column and the complete rows (when MMD or BBSD runs): a few integers per
column travel to the client. The report's ``samples`` (the values the HTML report plots for
the most-drifted numeric features) come from one more pass: a random sample of about
``PLOT_SAMPLE`` rows of those columns per table (:func:`~nndoctor.shift._dask_sample.sample_rows`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from nndoctor._validation import check_module, check_random_state
from nndoctor.exceptions import DataValidationError
from nndoctor.shift._bbsd import bbsd_test
from nndoctor.shift._classifier_test import classifier_test
from nndoctor.shift._common import check_alpha, display_names, warn_small
from nndoctor.shift._dask import _aligned, _as_dask_frame, _feature_test_rows
from nndoctor.shift._dask_sample import sample_rows
from nndoctor.shift._engines import DASK_SAMPLE_SIZE, register_dask, require_dask
from nndoctor.shift._mmd import _nan_result, mmd_test
from nndoctor.shift._suite import (
    PLOT_FEATURES,
    PLOT_SAMPLE,
    SHORT_NAMES,
    ShiftTestReport,
    _plan,
    _untested,
    drop_label,
    suite_rejects,
)
from nndoctor.shift._univariate import FeatureTestResult, _missing_error

__all__ = ["compare_samples"]


def _numeric_columns(frame: Any, cols: list[str]) -> list[str]:
    """The numeric, non-boolean columns of a Dask frame (from its dtypes, nothing computed)."""
    meta = frame._meta
    return [
        c
        for c in cols
        if pd.api.types.is_numeric_dtype(meta[c]) and not pd.api.types.is_bool_dtype(meta[c])
    ]


def _counts(frames: tuple[Any, Any], numeric: list[str]) -> list[tuple[int, Any, int]]:
    """Per table: rows, observed values per numeric column, rows complete in those columns."""
    from dask.base import compute

    todo: list[Any] = []
    for f in frames:
        part = f[numeric]
        todo.extend((f.shape[0], part.count(), part.dropna().shape[0]))
    got = compute(*todo)  # type: ignore[no-untyped-call]
    return [(int(got[i]), got[i + 1], int(got[i + 2])) for i in (0, 3)]


def _complete_rows(frames: tuple[Any, Any], columns: list[str]) -> tuple[int, int]:
    """Rows of each table with every one of ``columns`` present (one pass)."""
    from dask.base import compute

    m, n = compute(*(f[columns].dropna().shape[0] for f in frames))  # type: ignore[no-untyped-call]
    return int(m), int(n)


def _c2st_tables(dx: Any, dy: Any, missing: str, given: tuple[str, str]) -> tuple[Any, Any]:
    """The rows the classifier test samples from, as in memory (``_suite._c2st_rows``)."""
    from dask.base import compute

    if missing == "raise":
        for name, counts in zip(given, compute(dx.isna().sum(), dy.isna().sum()), strict=True):  # type: ignore[no-untyped-call]
            if counts.any():
                column = counts.index[int((counts.to_numpy() > 0).argmax())]
                raise _missing_error(int(counts[column]), name, str(column))
    if missing == "drop":
        xs, xt = dx.dropna(), dy.dropna()
        m, n = _complete_rows((dx, dy), list(dx.columns))
        if min(m, n) == 0:
            raise DataValidationError(
                f"with missing='drop' the classifier test uses the rows with every value present, "
                f"and {given[0]} has {m} and {given[1]} {n}; pass missing='test' (the classifier "
                "handles missing values) or impute them"
            )
        return xs, xt
    return dx, dy


def compare_samples(
    source: Any,
    target: Any,
    *,
    method: str = "auto",
    label: str | None = None,
    model: Any = None,
    alpha: float = 0.05,
    correction: Any = "holm",
    min_effect: float | None = None,
    random_state: Any = None,
    missing: Any = "test",
    names: tuple[str, str] | None = None,
    sample_size: int = DASK_SAMPLE_SIZE,
) -> ShiftTestReport:
    """:func:`nndoctor.shift.compare_samples` on Dask collections (module docstring).

    The same plan, seeds and report as in memory: ``methods`` names the tests that ran
    (``"features"``, ``"mmd"``, ``"c2st"``, ``"bbsd"``) and drift is reported when any
    rejects at ``alpha``,

    .. math:: \\text{drift} \\iff \\exists\\,\\text{test}: p \\le \\alpha .

    Exact on Dask: the χ² tests, missing counts, BBSD's χ². Approximate, each stating its
    bound or sample: the KS distances (``statistic_error``), BBSD's KS parts (``ks_error``),
    the MMD (the random-feature test, asymptotic; with the bandwidth from
    ``details["bandwidth_sample"]`` rows), the classifier test (on about ``sample_size``
    rows per table, ``sampled_from``). Only bounded summaries and the samples travel to the
    client.

    References
    ----------
    Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly. NeurIPS.

    Examples
    --------
    >>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
    >>> from nndoctor.shift import compare_samples
    >>> rng = np.random.default_rng(0)
    >>> def table(shift):
    ...     frame = pd.DataFrame(rng.normal(size=(300, 2)) + shift, columns=["a", "b"])
    ...     return dd.from_pandas(frame, npartitions=3)
    >>> src, tgt = table([0, 0]), table([0, 1])
    >>> with dask.config.set(scheduler="synchronous"):
    ...     rep = compare_samples(src, tgt, random_state=0)
    >>> rep.methods, rep.drift_detected, rep.mmd.method
    (('features', 'mmd'), True, 'mmd-rff')
    """
    require_dask()
    alpha = check_alpha(alpha)
    if model is not None:
        check_module(model, need_parameters=False)
    rng = check_random_state(random_state)
    given = display_names(names, ("the source table", "the target table"))
    passed = None if names is None else given
    src, tgt = _as_dask_frame(source, given[0]), _as_dask_frame(target, given[1])
    src, tgt = drop_label(src, tgt, label, given)
    dx, dy, cols = _aligned(src, tgt, given)
    numeric = _numeric_columns(dx, cols)
    todo = _plan(method, bool(numeric), model)
    counts = None
    if ("mmd" in todo or "bbsd" in todo) and numeric:
        counts = _counts((dx, dy), numeric)
    rows: tuple[int, int] | None = None if counts is None else (counts[0][0], counts[1][0])
    results: dict[str, Any] = {}
    for what in todo:
        seed = int(rng.integers(2**31 - 1))
        if what == "features":
            res, m, n = _feature_test_rows(
                dx, dy, kinds="categorical" if method == "chi2" else None,
                correction=correction, alpha=alpha, min_effect=min_effect,
                random_state=seed, missing=missing, names=passed,
            )  # fmt: skip
            rows = (m, n)
            results["features"] = res
        elif what == "mmd":
            if not numeric or counts is None:
                raise DataValidationError(
                    "MMD needs numeric columns and the tables have none; use --method chi2"
                )
            results["mmd"] = _mmd(dx, dy, numeric, counts, missing, alpha, seed, passed)
        elif what == "c2st":
            xs, xt = _c2st_tables(dx, dy, str(missing), given)
            c2st = classifier_test(xs, xt, alpha=alpha, random_state=seed, names=passed,
                                   sample_size=sample_size)  # fmt: skip
            rows = rows or c2st.sampled_from
            results["classifier"] = c2st
        elif what == "bbsd" and counts is not None:
            results["bbsd"] = _bbsd(dx, dy, numeric, counts, missing, model, alpha)
        elif what == "bbsd":
            raise DataValidationError(
                "BBSD feeds the numeric columns to the model and the tables have none; pass "
                "tables with numeric features, or leave --model out"
            )
    samples = _plot_samples(results.get("features"), dx, dy, rng, given)
    rejected = suite_rejects(results, alpha)
    drift = bool(rejected)
    untested = _untested(results)
    m, n = rows if rows is not None else (0, 0)
    return ShiftTestReport(
        methods=tuple(SHORT_NAMES[k] for k in results),
        drift_detected=drift,
        rejected=rejected,
        n_source=int(m),
        n_target=int(n),
        label=label,
        samples=samples,
        untested=untested,
        insufficient_data=bool(untested) and not drift,
        **results,
    )


def _plot_samples(
    feats: FeatureTestResult | None,
    dx: Any,
    dy: Any,
    rng: np.random.Generator,
    given: tuple[str, str],
) -> dict[str, dict[str, list[float]]]:
    """Up to ``PLOT_SAMPLE`` observed values per table of the most-drifted numeric features,
    from a random sample of about that many rows of those columns (one pass)."""
    if feats is None:
        return {}
    top = [f.name for f in feats.ranked() if f.kind == "numeric"][:PLOT_FEATURES]
    if not top:
        return {}
    parts = [
        sample_rows(frame[top], PLOT_SAMPLE, rng, nm)[0]
        for frame, nm in zip((dx, dy), given, strict=True)
    ]
    samples: dict[str, dict[str, list[float]]] = {}
    for name in top:
        pair = {}
        for side, part in zip(("source", "target"), parts, strict=True):
            values = part[name].to_numpy(np.float64, na_value=np.nan)
            pair[side] = [float(v) for v in values[np.isfinite(values)][:PLOT_SAMPLE]]
        if pair["source"] and pair["target"]:
            samples[name] = pair
    return samples


def _mmd(
    dx: Any,
    dy: Any,
    numeric: list[str],
    counts: list[tuple[int, Any, int]],
    missing: Any,
    alpha: float,
    seed: int,
    names: tuple[str, str] | None,
) -> Any:
    """The random-feature MMD on the complete rows of the numeric columns, as in memory: a
    column missing throughout one table is left out, what was left out goes into details."""
    (rows_x, seen_x, full_x), (rows_y, seen_y, full_y) = counts
    left_out: list[str] = []
    if missing != "raise":
        left_out = [c for c in numeric if int(seen_x[c]) == 0 or int(seen_y[c]) == 0]
    # by name, as in memory: the random features' frequencies are drawn column by column
    kept = sorted((c for c in numeric if c not in left_out), key=str)
    m, n = full_x, full_y
    if left_out and kept:
        m, n = _complete_rows((dx, dy), kept)
    if missing == "raise":
        m, n = rows_x, rows_y
    if min(m, n) == 0 or not kept:
        warn_small(
            f"MMD needs rows with every numeric column present; {m} source and {n} target "
            f"row(s) have them (over {len(kept)} column(s)); the MMD result is NaN (the "
            "per-feature tests use each column's observed values)"
        )
        res = _nan_result("mmd-rff", m, n, alpha, None)
    else:
        xs, xt = dx[kept], dy[kept]
        if missing != "raise":
            xs, xt = xs.dropna(), xt.dropna()
        res = mmd_test(xs, xt, standardize=True, method="rff", alpha=alpha, random_state=seed,
                       names=names)  # fmt: skip
    extra: dict[str, Any] = {}
    if (m, n) != (rows_x, rows_y):
        extra["complete_rows"] = f"{m}/{rows_x} and {n}/{rows_y}"
    if left_out:
        extra["columns_left_out"] = ", ".join(left_out[:10])
    return replace(res, details={**res.details, **extra}) if extra else res


def _bbsd(
    dx: Any,
    dy: Any,
    numeric: list[str],
    counts: list[tuple[int, Any, int]],
    missing: Any,
    model: Any,
    alpha: float,
) -> Any:
    """BBSD on the rows with every numeric value present; the model runs on the workers."""
    xs, xt = dx[numeric], dy[numeric]
    m, n = counts[0][2], counts[1][2]
    if missing != "raise":
        xs, xt = xs.dropna(), xt.dropna()
    else:
        m, n = counts[0][0], counts[1][0]
    if min(m, n) == 0:
        raise DataValidationError(
            f"BBSD feeds whole rows to the model, and {m} source and {n} target row(s) have "
            "every numeric column present; impute the missing values first, or leave --model out"
        )
    return bbsd_test(xs, xt, model=model, alpha=alpha)


register_dask(compare_samples=compare_samples)
