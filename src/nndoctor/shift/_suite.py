"""Several two-sample tests on one pair of tables (what ``nndoctor shift test`` runs)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from torch import nn

from nndoctor._io import column_hint
from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_callable,
    check_choice,
    check_module,
    check_random_state,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._bbsd import BBSDResult, bbsd_test
from nndoctor.shift._classifier_test import ClassifierTestResult, classifier_test
from nndoctor.shift._common import (
    TwoSampleResult,
    as_frame,
    check_alpha,
    display_names,
    model_softmax,
    same_order,
    warn_small,
)
from nndoctor.shift._engines import dask_impl, is_dask
from nndoctor.shift._mmd import _nan_result, check_permutations, mmd_test
from nndoctor.shift._univariate import (
    _MISSING_POLICIES,
    Correction,
    FeatureTestResult,
    MissingPolicy,
    _missing_error,
    chi2_test,
    feature_test,
)

__all__ = ["ShiftTestReport", "compare_samples"]

SuiteMethod = Literal["auto", "mmd", "ks", "chi2", "c2st", "bbsd"]
_SUITE_METHODS = tuple(sorted(get_args(SuiteMethod)))
#: Values per side kept for the distribution plots of the most-drifted features.
PLOT_SAMPLE = 2_000
PLOT_FEATURES = 4


@dataclass(frozen=True, slots=True)
class ShiftTestReport(ResultMixin):
    """The tests run on one source/target pair and the overall decision.

    Attributes
    ----------
    methods : tuple of str
        The tests that ran.
    drift_detected : bool
        A test rejects after the suite's correction for running several tests (``rejected`` is
        not empty).
    rejected : tuple of str
        The tests (``methods`` names) that reject "no change" with Holm's correction over the
        tests that gave a p-value, so that the verdict's false-alarm rate is at most ``alpha``
        whatever the number of tests: sorted by p-value, the j-th of k rejects while
        :math:`p_{(j)} \\le \\alpha / (k - j + 1)` and the test's own verdict is "drift" (its
        effect-size rule included). A test's own ``drift_detected`` is at ``alpha`` alone.
    features, mmd, classifier, bbsd : result or None
        Each test's full result.
    n_source, n_target : int
    label : str or None
        The label column left out of the features.
    samples : dict
        For the report's plots: up to 2,000 values per side of the most-drifted numeric
        features, ``{name: {"source": [...], "target": [...]}}``.
    untested : tuple of str
        What could not be tested (a NaN p-value: too few rows, a column with fewer than two
        observed values), e.g. ``("mmd", "column 'b'")``.
    insufficient_data : bool
        No test found drift and something could not be tested: the verdict is "insufficient
        data", never "no change" (a NaN p-value is no evidence of no shift).
    """

    methods: tuple[str, ...]
    drift_detected: bool
    n_source: int
    n_target: int
    label: str | None = None
    features: FeatureTestResult | None = None
    mmd: TwoSampleResult | None = None
    classifier: ClassifierTestResult | None = None
    bbsd: BBSDResult | None = None
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    untested: tuple[str, ...] = ()
    insufficient_data: bool = False
    rejected: tuple[str, ...] = ()


#: what the report's ``methods`` call each result
SHORT_NAMES = {"features": "features", "mmd": "mmd", "classifier": "c2st", "bbsd": "bbsd"}


def suite_rejects(results: dict[str, Any], alpha: float) -> tuple[str, ...]:
    """The tests of a suite that reject after Holm's correction over the tests that ran.

    .. math:: p_{(1)} \\le \\dots \\le p_{(k)}: \\text{reject } (j) \\iff
       \\forall i \\le j: p_{(i)} \\le \\alpha / (k - i + 1)

    over the k tests with a finite p-value; a rejected test counts only when its own verdict is
    "drift" (a per-feature test's effect-size rule can overrule its p-value). Drift is reported
    when any test is left, so the probability of a false alarm when nothing changed is at most
    ``alpha`` (Holm, "A simple sequentially rejective multiple test procedure", Scand. J.
    Statist. 1979) — without it, "any of k tests at ``alpha``" alarms with probability up to
    ``k * alpha``.

    Examples
    --------
    >>> from types import SimpleNamespace as R
    >>> res = {"features": R(pvalue=0.03, drift_detected=True),
    ...        "mmd": R(pvalue=0.04, drift_detected=True)}
    >>> suite_rejects(res, 0.05)  # 0.03 > 0.05 / 2: neither survives
    ()
    >>> res["mmd"] = R(pvalue=0.001, drift_detected=True)
    >>> suite_rejects(res, 0.05)  # 0.001 <= 0.025, then 0.03 <= 0.05
    ('mmd', 'features')
    """
    tested = sorted(
        (float(r.pvalue), key) for key, r in results.items() if math.isfinite(float(r.pvalue))
    )
    k = len(tested)
    out: list[str] = []
    for j, (p, key) in enumerate(tested):
        if p > alpha / (k - j):
            break
        if results[key].drift_detected:
            out.append(SHORT_NAMES[key])
    return tuple(out)


def _untested(results: dict[str, Any]) -> tuple[str, ...]:
    """The tests (and per-feature columns) whose p-value is NaN: they could not run."""
    short = {"features": "per-feature", "mmd": "mmd", "classifier": "c2st", "bbsd": "bbsd"}
    out: list[str] = []
    for key, res in results.items():
        if not np.isfinite(float(res.pvalue)):
            out.append(short[key])  # the whole test: its columns need no listing
        elif key == "features":
            out.extend(
                f"column {f.name!r}" for f in res.features if not np.isfinite(float(f.pvalue))
            )
    return tuple(out)


def compare_samples(
    source: Any,
    target: Any,
    *,
    method: SuiteMethod = "auto",
    label: str | None = None,
    model: nn.Module | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    min_effect: float | None = None,
    n_permutations: int = 1000,
    random_state: Any = None,
    progress: Callable[[float, str], None] | None = None,
    missing: MissingPolicy = "test",
    names: tuple[str, str] | None = None,
) -> ShiftTestReport:
    """Run the two-sample tests that fit a pair of tables and collect them.

    ``method="auto"`` runs :func:`feature_test` (KS or χ² per column), :func:`mmd_test` on the
    standardized numeric columns, and :func:`bbsd_test` when a ``model`` is given; the other
    values run one test. Drift is reported when a test rejects after Holm's correction over the
    tests that ran (:func:`suite_rejects`), so that ``alpha`` bounds the false-alarm rate of the
    verdict, not of each test.

    Dask collections (``dask.dataframe.DataFrame``, ``dask.array.Array``) run the same plan
    with the same seeds and give the same report, each test on its Dask engine
    (:mod:`nndoctor.shift._dask_suite`): the per-feature tests from merged partition summaries
    (KS within ``statistic_error``), the MMD as the random-feature test (``"mmd-rff"``, where
    memory runs the permutation test; ``n_permutations`` is not used), the classifier test on a
    random sample of each table (``sampled_from``), BBSD with the model on the workers (KS parts
    within ``ks_error``). ``samples`` come from a random sample of the plotted columns;
    ``progress`` is not called on Dask.

    .. math:: \\text{drift} \\iff \\min_i p_i \\le \\alpha / k \\quad (k \\text{ tests})

    Parameters
    ----------
    source, target : DataFrame or array-like
    method : {"auto", "mmd", "ks", "chi2", "c2st", "bbsd"}
    label : str, optional
        A label column of ``source`` to leave out of the features (``target`` may lack it).
    model : nn.Module, optional
        Maps the numeric features (float32) to logits; needed for ``"bbsd"``.
    alpha, correction, min_effect, n_permutations, random_state
        Passed to the tests.
    progress : callable, optional
        ``progress(fraction, text)``.
    missing : {"test", "drop", "category", "raise"}
        Missing values (NaN, None, NA), as in :func:`feature_test`: by default the per-feature
        tests use each column's observed values and also test its missing rate. MMD and BBSD
        need whole rows: they run on the rows with no missing numeric value (the rows used
        are reported in the MMD result's ``details["complete_rows"]``). The classifier test
        (``"c2st"``) takes the missing values as they are (its default classifier handles
        them, and a changed missing rate is a shift it can find), or only the complete rows
        with ``"drop"``. With ``"raise"`` missing values are an error.
    names : (str, str), optional
        What error messages call the two tables (default: ``"X"``/``"Y"`` in the tests'
        messages, "the source table"/"the target table" in this function's own). The command
        line passes ``("the source table (src.csv)", "the target table (tgt.csv)")``.

    Returns
    -------
    ShiftTestReport

    References
    ----------
    Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly. NeurIPS.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> src = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    >>> tgt = pd.DataFrame(rng.normal(size=(300, 3)) + [0, 0.6, 0], columns=["a", "b", "c"])
    >>> rep = compare_samples(src, tgt, n_permutations=200, random_state=0)
    >>> rep.methods, rep.drift_detected, rep.features.ranked()[0].name
    (('features', 'mmd'), True, 'b')
    """
    check_choice(method, _SUITE_METHODS, name="method")
    check_choice(missing, _MISSING_POLICIES, name="missing")
    if is_dask(source) or is_dask(target):  # the same plan, each test on Dask (_dask_suite)
        report: ShiftTestReport = dask_impl("compare_samples")(
            source, target, method=method, label=label, model=model, alpha=alpha,
            correction=correction, min_effect=min_effect, random_state=random_state,
            missing=missing, names=names)  # fmt: skip
        return report
    alpha = check_alpha(alpha)
    check_permutations(n_permutations)  # before any work: a million at most, memory bounded
    rng = check_random_state(random_state)
    if progress is not None:
        check_callable(progress, name="progress", expected="progress(fraction, text)")
    if model is not None:
        check_module(model, need_parameters=False)
    tick = progress or (lambda fraction, text: None)
    given = display_names(names, ("the source table", "the target table"))
    # the tests' own messages keep their defaults (X, Y) unless names were given
    passed = None if names is None else given
    src, tgt = _feature_tables(source, target, label, given, named=names is not None)
    numeric = [c for c in src.columns if pd.api.types.is_numeric_dtype(src[c])
               and not pd.api.types.is_bool_dtype(src[c])]  # fmt: skip
    todo = _plan(method, bool(numeric), model)
    # MMD and BBSD see whole rows: those with every numeric value present (unless asked to
    # raise); a column missing throughout one table (its missing-rate test flags it) is left out
    left_out: list[str] = []
    if missing != "raise":
        left_out = [c for c in numeric if src[c].isna().all() or tgt[c].isna().all()]
    results: dict[str, Any] = {}
    for i, what in enumerate(todo):
        tick(i / len(todo), f"running {what}")
        seed = int(rng.integers(2**31 - 1))
        results.update(
            _run_test(what, src, tgt, method=method, numeric=numeric, left_out=left_out,
                      model=model, alpha=alpha, correction=correction, min_effect=min_effect,
                      n_permutations=n_permutations, seed=seed, missing=missing, given=given,
                      passed=passed, progress=_share(tick, i / len(todo), 1 / len(todo), what))
        )  # fmt: skip
    tick(1.0, "done")
    samples = _plot_samples(results.get("features"), src, tgt, rng)
    rejected = suite_rejects(results, alpha)
    drift = bool(rejected)
    untested = _untested(results)
    return ShiftTestReport(
        methods=tuple(SHORT_NAMES[k] for k in results),
        drift_detected=drift,
        rejected=rejected,
        n_source=int(src.shape[0]),
        n_target=int(tgt.shape[0]),
        label=label,
        samples=samples,
        untested=untested,
        insufficient_data=bool(untested) and not drift,
        **results,
    )


def _feature_tables(
    source: Any, target: Any, label: str | None, given: tuple[str, str], *, named: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The features of both tables: string column names, no label, the source's column order."""
    # new frames with string column names (the caller's frames are left untouched)
    src = as_frame(source, given[0] if named else "source").rename(columns=str)
    tgt = as_frame(target, given[1] if named else "target").rename(columns=str)
    src, tgt = drop_label(src, tgt, label, given)
    return src, same_order(src, tgt, given)


def drop_label(src: Any, tgt: Any, label: str | None, given: tuple[str, str]) -> tuple[Any, Any]:
    """Both tables (pandas or Dask frames) without the ``label`` column, which the source must
    have; the target may lack it (deployment data is often unlabeled)."""
    if label is None:
        return src, tgt
    if label not in src.columns:
        raise InvalidParameterError(
            f"label column {label!r} is not in {given[0]}; "
            f"{column_hint(label, src.columns)}; pass an existing column"
        )
    return src.drop(columns=[label]), tgt.drop(columns=[c for c in (label,) if c in tgt.columns])


def _plan(method: str, numeric: bool, model: nn.Module | None) -> list[str]:
    """Which tests run, in order: ``"auto"`` picks those the columns and the model allow."""
    if method == "auto":
        todo = ["features", "mmd"] if numeric else ["features"]
        if model is not None:
            todo.append("bbsd")
    elif method in ("ks", "chi2"):
        todo = ["features"]
    else:
        todo = [method]
    if "bbsd" in todo and model is None:
        raise InvalidParameterError(
            "method 'bbsd' tests a model's outputs; pass a model (--model file.py:factory)"
        )
    return todo


def _run_test(
    what: str,
    src: pd.DataFrame,
    tgt: pd.DataFrame,
    *,
    method: str,
    numeric: list[str],
    left_out: list[str],
    model: nn.Module | None,
    alpha: float,
    correction: Correction,
    min_effect: float | None,
    n_permutations: int,
    seed: int,
    missing: MissingPolicy,
    given: tuple[str, str],
    passed: tuple[str, str] | None,
    progress: Callable[[float, str], None],
) -> dict[str, Any]:
    """One test of the plan on the rows it can see, as ``{its result's name: result}``."""
    if what == "features":
        test = chi2_test if method == "chi2" else feature_test
        return {
            "features": test(
                src, tgt, correction=correction, alpha=alpha, min_effect=min_effect,
                random_state=seed, missing=missing, names=passed,
            )
        }  # fmt: skip
    if what == "mmd":
        if not numeric:
            raise DataValidationError(
                "MMD needs numeric columns and the tables have none; use --method chi2"
            )
        # the columns in the order of their names: the MMD does not depend on the columns'
        # order, and with this neither do its permutations (the rows' canonical order)
        kept = sorted((c for c in numeric if c not in left_out), key=str)
        return {
            "mmd": _mmd_complete_rows(
                _complete(src, kept, missing), _complete(tgt, kept, missing),
                (src.shape[0], tgt.shape[0]), left_out,
                n_permutations=n_permutations, alpha=alpha, seed=seed, names=passed,
                progress=progress,
            )
        }  # fmt: skip
    if what == "c2st":
        by_name = sorted(src.columns, key=str)  # folds and fits do not follow column order
        return {
            "classifier": classifier_test(
                *_c2st_rows(src[by_name], tgt[by_name], missing, given), alpha=alpha,
                random_state=seed, names=passed,
            )
        }  # fmt: skip
    if model is None:  # "bbsd" without a model was rejected by _plan
        return {}
    xs = _complete(src, numeric, missing).to_numpy(dtype=np.float64)
    xt = _complete(tgt, numeric, missing).to_numpy(dtype=np.float64)
    if min(xs.shape[0], xt.shape[0]) == 0:
        raise DataValidationError(
            f"BBSD feeds whole rows to the model, and {xs.shape[0]} source and "
            f"{xt.shape[0]} target row(s) have every numeric column present; impute "
            "the missing values first, or leave --model out"
        )
    return {"bbsd": bbsd_test(model_softmax(model, xs), model_softmax(model, xt), alpha=alpha)}


def _plot_samples(
    feats: FeatureTestResult | None, src: pd.DataFrame, tgt: pd.DataFrame, rng: np.random.Generator
) -> dict[str, dict[str, list[float]]]:
    """Which values the report plots: a subsample of each most-drifted numeric feature."""
    samples: dict[str, dict[str, list[float]]] = {}
    if feats is not None:
        top = [f.name for f in feats.ranked() if f.kind == "numeric"][:PLOT_FEATURES]
        for name in top:
            pair = {
                "source": _subsample(src[name].to_numpy(np.float64, na_value=np.nan), rng),
                "target": _subsample(tgt[name].to_numpy(np.float64, na_value=np.nan), rng),
            }
            if pair["source"] and pair["target"]:
                samples[name] = pair
    return samples


def _share(
    tick: Callable[[float, str], None], start: float, width: float, what: str
) -> Callable[[float, str], None]:
    """A progress callback for one test: its fraction mapped into its share of the bar."""

    def advance(fraction: float, text: str) -> None:
        tick(start + width * fraction, f"{what}: {text}")

    return advance


def _complete(frame: pd.DataFrame, columns: list[str], missing: str) -> pd.DataFrame:
    """The rows of ``frame[columns]`` with no missing value (all rows with ``"raise"``)."""
    part = frame[columns]
    return part if missing == "raise" else part[~part.isna().any(axis=1)]


def _c2st_rows(
    src: pd.DataFrame, tgt: pd.DataFrame, missing: str, names: tuple[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows the classifier test sees: all of them (missing values and all), the complete
    ones with ``"drop"``; ``"raise"`` refuses missing values."""
    if missing == "raise":
        for name, frame in zip(names, (src, tgt), strict=True):
            counts = frame.isna().sum()
            if counts.any():
                column = counts.index[int(np.argmax(counts.to_numpy() > 0))]
                raise _missing_error(int(counts[column]), name, str(column))
    if missing == "drop":
        xs = _complete(src, list(src.columns), "drop")
        xt = _complete(tgt, list(tgt.columns), "drop")
        if min(xs.shape[0], xt.shape[0]) == 0:
            raise DataValidationError(
                f"with missing='drop' the classifier test uses the rows with every value present, "
                f"and {names[0]} has {xs.shape[0]} and {names[1]} {xt.shape[0]}; pass "
                "missing='test' (the classifier handles missing values) or impute them"
            )
        return xs, xt
    return src, tgt


def _mmd_complete_rows(
    src: pd.DataFrame,
    tgt: pd.DataFrame,
    rows: tuple[int, int],
    left_out: list[str],
    *,
    n_permutations: int,
    alpha: float,
    seed: int,
    names: tuple[str, str] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> TwoSampleResult:
    """MMD on the complete rows; what was left out goes into ``details``."""
    m, n = src.shape[0], tgt.shape[0]
    if min(m, n) == 0 or src.shape[1] == 0:
        warn_small(
            f"MMD needs rows with every numeric column present; {m} source and {n} target "
            f"row(s) have them (over {src.shape[1]} column(s)); the MMD result is NaN (the "
            "per-feature tests use each column's observed values)"
        )
        res = _nan_result("mmd-permutation", m, n, alpha, n_permutations)
    else:
        res = mmd_test(src, tgt, standardize=True, n_permutations=n_permutations, alpha=alpha,
                       random_state=seed, names=names, progress=progress)  # fmt: skip
    extra: dict[str, Any] = {}
    if (m, n) != rows:
        extra["complete_rows"] = f"{m}/{rows[0]} and {n}/{rows[1]}"
    if left_out:
        extra["columns_left_out"] = ", ".join(left_out[:10])
    return replace(res, details={**res.details, **extra}) if extra else res


def _subsample(values: np.ndarray[Any, Any], rng: np.random.Generator) -> list[float]:
    values = np.sort(values[np.isfinite(values)])  # the same values whatever the rows' order
    if values.size > PLOT_SAMPLE:
        values = rng.choice(values, size=PLOT_SAMPLE, replace=False)
    return [float(v) for v in values]
