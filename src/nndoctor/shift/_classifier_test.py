"""The classifier two-sample test (C2ST): can a model tell the two samples apart?

Cross-fitted: each fold's rows are scored by a model that never saw them, and each fold is tested
on its own (a Mann-Whitney test of the held-out scores, exact given the model); the fold
p-values are then combined with a rule that is valid under any dependence between folds.
Pooling all out-of-fold scores into one rank test is not valid (the folds' models differ) and
is not done.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from nndoctor._results import ResultMixin
from nndoctor._validation import check_choice, check_int, check_matrix, check_random_state
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._common import (
    aligned_frames,
    canonical_order,
    check_alpha,
    column_names,
    display_names,
    infinite_values_error,
    inverse_order,
    is_categorical,
    smallest_pvalue,
    warn_small,
)
from nndoctor.shift._engines import DASK_SAMPLE_SIZE, dask_impl, is_dask

__all__ = ["ClassifierTestResult", "classifier_test", "combine_pvalues_dependent"]

Combine = Literal["bonferroni", "cauchy"]
Importance = Literal["auto", "permutation", "none"]


@dataclass(frozen=True, slots=True)
class ClassifierTestResult(ResultMixin):
    """The outcome of a classifier two-sample test.

    Attributes
    ----------
    statistic : float
        AUC of the out-of-fold domain probabilities over all rows (0.5: indistinguishable).
    pvalue : float
        Combined p-value of the per-fold tests (never 0).
    method : str
        ``"c2st"``.
    fold_aucs, fold_pvalues : ndarray of shape (n_splits,)
        Held-out AUC and one-sided Mann-Whitney p-value of each fold.
    combine : str
        How the fold p-values were combined.
    oof_probabilities : ndarray of shape (m + n,)
        Out-of-fold P(target | x), source rows first then target rows.
    feature_importances : dict
        Feature name -> importance (mean over folds; what the model used to tell them apart),
        sorted by decreasing importance.
    importance_kind : str
        ``"model"`` (the model's own ``feature_importances_``/``coef_``), ``"permutation"``
        (drop of held-out AUC when a column is shuffled) or ``"none"``.
    n_splits, n_source, n_target : int
    alpha : float
    drift_detected : bool
    model : str
        The classifier's class name.
    n_missing : (int, int)
        Missing (NaN) cells in the source and target samples; the classifier saw them as they
        are, so a change in where values are missing is part of what it tests.
    sampled_from : (int, int) or None
        The row counts of the source and target tables when the test ran on a random sample
        of each (Dask inputs: ``n_source`` and ``n_target`` are then the sample sizes);
        ``None`` when it saw every row.
    """

    statistic: float
    pvalue: float
    method: str
    fold_aucs: npt.NDArray[np.float64]
    fold_pvalues: npt.NDArray[np.float64]
    combine: str
    oof_probabilities: npt.NDArray[np.float64]
    feature_importances: dict[str, float]
    importance_kind: str
    n_splits: int
    n_source: int
    n_target: int
    alpha: float
    drift_detected: bool
    model: str
    n_missing: tuple[int, int] = (0, 0)
    sampled_from: tuple[int, int] | None = None


def combine_pvalues_dependent(pvalues: Any, method: Combine = "bonferroni") -> float:
    """Combine p-values that may be dependent.

    ``"bonferroni"``: :math:`\\min(1, k \\min_i p_i)`, valid under any dependence.
    ``"cauchy"``: the Cauchy combination
    :math:`T = \\frac1k\\sum_i \\tan((\\tfrac12 - p_i)\\pi)`,
    :math:`p = \\tfrac12 - \\arctan(T)/\\pi`, exact for independent p-values and
    asymptotically valid (for small levels) under arbitrary dependence; more powerful when all
    folds carry a similar signal.

    References
    ----------
    Liu, Y., Xie, J. (2020). Cauchy combination test. JASA 115, 393-402.

    Examples
    --------
    >>> combine_pvalues_dependent([0.01, 0.2, 0.5])
    0.03
    >>> round(combine_pvalues_dependent([0.01, 0.2, 0.5], "cauchy"), 4)
    0.0287
    """
    check_choice(method, ("bonferroni", "cauchy"), name="combine")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.size == 0 or np.any(~np.isfinite(p)):
        return float("nan")
    if method == "bonferroni":
        return smallest_pvalue(float(min(1.0, p.size * p.min())))
    p = np.clip(p, 1e-300, 1.0)
    small = p < 1e-15
    terms = np.where(small, 1.0 / (np.where(small, p, 1.0) * math.pi), np.tan((0.5 - p) * math.pi))
    t = float(terms.mean())
    if t > 1e15:
        return smallest_pvalue(1.0 / (t * math.pi))
    return smallest_pvalue(0.5 - math.atan(t) / math.pi)


def _numeric_column(s: pd.Series, name: str, column: Any) -> npt.NDArray[np.float64]:
    """A numeric column as floats (NaN where missing); infinity is an error naming the table."""
    values = np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    n_inf = int(np.count_nonzero(np.isinf(values)))
    if n_inf:
        raise infinite_values_error(n_inf, name, column)
    return values


def _encode(
    X: Any, Y: Any, names: tuple[str, str]
) -> tuple[npt.NDArray[np.float64], list[str], list[bool]]:
    """Pooled numeric matrix, NaN where a value is missing; categorical frame columns become
    integer codes (NaN for a missing category)."""
    a, b = names
    if isinstance(X, pd.DataFrame) or isinstance(Y, pd.DataFrame):
        fx, fy = aligned_frames(X, Y, names=names)
        if fx.shape[0] == 0 or fy.shape[0] == 0:
            raise DataValidationError(
                f"{a if fx.shape[0] == 0 else b} has 0 rows; pass at least 1 row per sample"
            )
        cols: list[npt.NDArray[Any]] = []
        is_cat: list[bool] = []
        for j, c in enumerate(fx.columns):
            sx, sy = fx.iloc[:, j], fy.iloc[:, j]
            if is_categorical(sx) or is_categorical(sy):
                pooled = pd.concat([sx, sy], ignore_index=True)
                na = pooled.isna().to_numpy()
                codes = pd.factorize(pooled[~na].astype(str), sort=True)[0]
                col = np.full(pooled.shape[0], np.nan)
                col[~na] = codes
                cols.append(col)
                is_cat.append(True)
            else:
                cols.append(np.concatenate((_numeric_column(sx, a, c), _numeric_column(sy, b, c))))
                is_cat.append(False)
        return np.column_stack(cols), [str(c) for c in fx.columns], is_cat
    x = check_matrix(X, name=a, min_rows=1, allow_nan=True)
    y = check_matrix(Y, name=b, min_rows=1, allow_nan=True)
    for name, arr in ((a, x), (b, y)):
        n_inf = int(np.count_nonzero(np.isinf(arr)))
        if n_inf:
            raise DataValidationError(
                f"{name} holds {n_inf} infinite value(s); infinity is not a missing value (NaN "
                "is): replace it with NaN or clip it to a finite value first"
            )
    if x.shape[1] != y.shape[1]:
        raise DataValidationError(
            f"{b} has {y.shape[1]} features but {a} has {x.shape[1]}; pass tables with the same "
            "columns"
        )
    return np.vstack((x, y)), column_names(X, x.shape[1]), [False] * x.shape[1]


@contextlib.contextmanager
def _missing_values_refused(
    model_name: str, Z: npt.NDArray[np.float64], m: int, names: tuple[str, str]
) -> Iterator[None]:
    """A user's classifier that cannot take NaN: its error becomes a typed one that says what to
    do (the default classifier handles missing values)."""
    try:
        yield
    except ValueError as err:
        nan = np.isnan(Z)
        if not nan.any() or "nan" not in str(err).lower():
            raise
        first = str(err).strip().splitlines()[0]
        raise DataValidationError(
            f"{model_name} cannot handle missing values ({first}), and {names[0]} holds "
            f"{int(nan[:m].sum())} NaN and {names[1]} {int(nan[m:].sum())}; impute them first, "
            "or leave model out to use the default HistGradientBoostingClassifier, which "
            "handles missing values (their pattern is part of what it tests)"
        ) from err


def _default_model(is_cat: list[bool], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    mask = np.asarray(is_cat) if any(is_cat) else None
    return HistGradientBoostingClassifier(
        max_iter=100, categorical_features=mask, early_stopping=False, random_state=seed
    )


def _auc(scores_pos: npt.NDArray[np.float64], scores_neg: npt.NDArray[np.float64]) -> float:
    ranks = stats.rankdata(np.concatenate((scores_pos, scores_neg)))
    n1, n0 = scores_pos.size, scores_neg.size
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def classifier_test(
    X: Any,
    Y: Any,
    *,
    model: Any = None,
    n_splits: int = 5,
    combine: Combine = "bonferroni",
    importance: Importance = "auto",
    alpha: float = 0.05,
    random_state: Any = None,
    names: tuple[str, str] | None = None,
    sample_size: int = DASK_SAMPLE_SIZE,
) -> ClassifierTestResult:
    """Classifier two-sample test with cross-fitting and a fold-respecting p-value.

    H0: X and Y come from one distribution, so no classifier separates them (AUC = 1/2).
    The pooled rows get domain labels (0 = X, 1 = Y) and are split into ``n_splits`` stratified
    folds; a clone of ``model`` is fitted on the other folds and scores the held-out fold.
    Given that model the held-out scores of X and Y are exchangeable under H0, so the
    one-sided Mann-Whitney test

    .. math:: \\mathrm{AUC}_k = \\frac{1}{m_k n_k}\\sum_{i \\in Y_k}\\sum_{j \\in X_k}
        \\mathbf 1[s_i > s_j] + \\tfrac12 \\mathbf 1[s_i = s_j]

    is valid for each fold ``k``. The folds' p-values share training data and are combined
    with ``combine`` (Bonferroni: valid under any dependence; Cauchy: more powerful, exact when
    independent). ``statistic`` is the AUC of all out-of-fold scores (descriptive only).

    Parameters
    ----------
    X, Y : array-like, DataFrame or tensor of shape (m, d) and (n, d)
        Categorical frame columns are coded as integers (and declared categorical to the
        default model). Missing values (NaN, None, NA) are allowed; infinity is an error.
    model : scikit-learn classifier, optional
        Needs ``fit`` and ``predict_proba`` (or ``decision_function``); cloned per fold
        (deep-copied when it is not a scikit-learn estimator). Default: scikit-learn's
        ``HistGradientBoostingClassifier(max_iter=100)``, which handles missing values. A
        model that rejects NaN gets a :class:`~nndoctor.exceptions.DataValidationError` on
        data with missing values (impute them, or use the default).
    n_splits : int
        Number of folds (>= 2).
    combine : {"bonferroni", "cauchy"}
    importance : {"auto", "permutation", "none"}
        ``"auto"``: the model's ``feature_importances_`` or ``|coef_|`` (times the column
        standard deviation) when it has them, else permutation importance on held-out folds.
    alpha : float
    random_state : None, int or numpy Generator
        Seeds the folds, the default model and the permutation importances.
    names : (str, str), optional
        What error messages call X and Y (default ``"X"`` and ``"Y"``).
    sample_size : int
        Dask inputs only (``dask.dataframe.DataFrame`` or ``dask.array.Array``): the test runs
        on a random sample of about this many rows of each table, drawn reproducibly from
        ``random_state`` where the data live; only the samples travel to the client (about
        ``sample_size`` rows each), and ``sampled_from`` states the tables' row counts.

    Returns
    -------
    ClassifierTestResult

    Notes
    -----
    Fewer than ``n_splits`` rows in a sample warns and returns NaN.

    **Missing values.** The default classifier learns, at each split, which side missing
    values go to, so a value's being missing is one more thing it can use to tell the samples
    apart: a change of a column's missing rate alone is a detectable shift, as it is for the
    model fed these data. The test stays exact under "no shift": whatever the classifier
    does with NaN, held-out scores of exchangeable rows are exchangeable.

    References
    ----------
    Lopez-Paz, D., Oquab, M. (2017). Revisiting classifier two-sample tests. ICLR.
    Friedman, J. (2003). On multivariate goodness-of-fit and two-sample testing.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4))
    >>> Y = rng.normal(size=(200, 4)) + [1.0, 0, 0, 0]
    >>> res = classifier_test(X, Y, model=LogisticRegression(), random_state=0)
    >>> res.drift_detected, max(res.feature_importances, key=res.feature_importances.get)
    (True, 'x0')
    >>> res.oof_probabilities.shape
    (400,)

    Missing values: a gradient-boosting classifier (the default is one, with more rounds)
    sees that ``x1`` goes from 5% to 40% missing.

    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> X[rng.random(200) < 0.05, 1] = np.nan
    >>> Y = rng.normal(size=(200, 4))
    >>> Y[rng.random(200) < 0.4, 1] = np.nan
    >>> gbm = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    >>> res = classifier_test(X, Y, model=gbm, n_splits=3, random_state=0)
    >>> res.drift_detected, max(res.feature_importances, key=res.feature_importances.get)
    (True, 'x1')
    """
    n_splits, alpha = _check_options(n_splits, combine, importance, alpha, sample_size)
    if is_dask(X) or is_dask(Y):  # a random sample of each table (see _dask_sample)
        result: ClassifierTestResult = dask_impl("classifier_test")(
            X, Y, model=model, n_splits=n_splits, combine=combine, importance=importance,
            alpha=alpha, random_state=random_state, names=names,
            sample_size=sample_size)  # fmt: skip
        return result
    rng = check_random_state(random_state)
    X, Y = _host(X), _host(Y)
    shown = display_names(names)
    Z, columns, is_cat = _encode(X, Y, shown)
    m = len(X)
    n = Z.shape[0] - m
    model, own_model = _pick_model(model, is_cat, int(rng.integers(2**31 - 1)))
    model_name = type(model).__name__
    cells = np.isnan(Z)
    n_missing = (int(cells[:m].sum()), int(cells[m:].sum()))
    if min(m, n) < n_splits:
        return _too_few_rows(m, n, n_splits, combine, alpha, model_name, n_missing)
    labels = np.concatenate((np.zeros(m, dtype=np.int64), np.ones(n, dtype=np.int64)))
    # each sample's rows in an order fixed by their content, so that the folds (drawn from
    # random_state by position) hold the same rows however the tables were ordered
    order = np.concatenate((canonical_order(Z[:m]), m + canonical_order(Z[m:])))
    fold_of = _stratified_folds(m, n, n_splits, rng)
    with _few_threads(Z.shape[0], active=own_model):
        fold_aucs, fold_p, oof, importances, kind = _cross_fit(
            model, None if own_model else model_name, shown, Z[order], labels, fold_of,
            importance, rng,
        )  # fmt: skip
    oof = oof[inverse_order(order)]  # back in the rows' own order
    pvalue = combine_pvalues_dependent(fold_p, combine)
    return ClassifierTestResult(
        statistic=_auc(oof[m:], oof[:m]),
        pvalue=pvalue,
        method="c2st",
        fold_aucs=fold_aucs,
        fold_pvalues=fold_p,
        combine=combine,
        oof_probabilities=oof,
        feature_importances=_ranked_importances(importances, columns, importance),
        importance_kind=kind,
        n_splits=n_splits,
        n_source=m,
        n_target=n,
        alpha=alpha,
        drift_detected=bool(pvalue <= alpha),
        model=model_name,
        n_missing=n_missing,
    )


def _check_options(
    n_splits: Any, combine: Any, importance: Any, alpha: Any, sample_size: Any
) -> tuple[int, float]:
    """Check the options before any work (also for Dask inputs): the folds and the level."""
    check_int(sample_size, name="sample_size", minimum=2)
    n_splits = check_int(n_splits, name="n_splits", minimum=2)
    check_choice(combine, ("bonferroni", "cauchy"), name="combine")
    check_choice(importance, ("auto", "none", "permutation"), name="importance")
    return n_splits, check_alpha(alpha)


def _host(data: Any) -> Any:
    """A tensor as a NumPy array on the host; anything else as it is."""
    return data.detach().cpu().numpy() if hasattr(data, "detach") else data


def _pick_model(model: Any, is_cat: list[bool], seed: int) -> tuple[Any, bool]:
    """The classifier to cross-fit (the seeded default if none is given) and whether it is ours."""
    if model is None:
        return _default_model(is_cat, seed), True
    if not hasattr(model, "fit"):
        raise InvalidParameterError(
            f"model must be a scikit-learn classifier with fit and predict_proba, got "
            f"{type(model).__name__}"
        )
    return model, False


def _too_few_rows(
    m: int,
    n: int,
    n_splits: int,
    combine: str,
    alpha: float,
    model_name: str,
    n_missing: tuple[int, int],
) -> ClassifierTestResult:
    """Fewer rows than folds in a sample: warn, and a NaN result (no evidence either way)."""
    warn_small(
        f"the classifier test needs at least n_splits={n_splits} rows per sample, got {m} "
        f"and {n}; the result is NaN"
    )
    nan = np.full(n_splits, np.nan)
    return ClassifierTestResult(
        float("nan"), float("nan"), "c2st", nan, nan.copy(), combine,
        np.full(m + n, np.nan), {}, "none", n_splits, m, n, alpha, False, model_name,
        n_missing,
    )  # fmt: skip


def _ranked_importances(
    importances: npt.NDArray[np.float64], columns: list[str], importance: str
) -> dict[str, float]:
    """Feature name -> importance, most important first (empty with ``importance="none"``)."""
    if importance == "none":
        return {}
    order = np.argsort(-importances, kind="stable")
    return {columns[j]: float(importances[j]) for j in order}


#: Below this many rows the default classifier is fitted on one thread: OpenMP start-up and
#: contention cost more than they save on small problems (25 times the CPU time on a busy
#: two-core machine for a few hundred rows).
SMALL_ROWS = 20_000
_CONTROLLER: list[Any] = []  # one threadpoolctl controller (finding the libraries takes ~10 ms)


@contextlib.contextmanager
def _few_threads(rows: int, active: bool) -> Iterator[None]:
    if not active or rows >= SMALL_ROWS:
        yield
        return
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]  # no stubs

        _CONTROLLER.append(ThreadpoolController())
    with _CONTROLLER[0].limit(limits=1, user_api="openmp"):
        yield


def _cross_fit(
    model: Any,
    refusing: str | None,
    names: tuple[str, str],
    Z: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    fold_of: npt.NDArray[np.int64],
    importance: str,
    rng: np.random.Generator,
) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
    npt.NDArray[np.float64], str,
]:  # fmt: skip
    """Fit a fresh model on all folds but one and score that one, fold by fold: the fold AUCs
    and p-values, the out-of-fold scores, the mean importances and their kind. ``refusing``:
    the name of a user's model whose NaN errors become typed ones (None: the default model)."""
    n_splits = int(fold_of.max()) + 1
    m = int(np.count_nonzero(labels == 0))
    oof = np.empty(Z.shape[0], dtype=np.float64)
    fold_aucs = np.empty(n_splits)
    fold_p = np.empty(n_splits)
    importances = np.zeros(Z.shape[1])
    kind = "none" if importance == "none" else "permutation"
    sd = _observed_sd(Z)
    for k in range(n_splits):
        test = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        est = _fresh(model)
        guard = (
            _missing_values_refused(refusing, Z, m, names) if refusing else contextlib.nullcontext()
        )
        with guard:
            est.fit(Z[train], labels[train])
            scores = _scores(est, Z[test])
        oof[test] = scores
        pos, neg = scores[labels[test] == 1], scores[labels[test] == 0]
        fold_aucs[k] = _auc(pos, neg)
        fold_p[k] = _mann_whitney_greater(pos, neg)
        if importance == "none":
            continue
        own = _model_importance(est, sd, Z[train]) if importance == "auto" else None
        if own is not None:
            kind = "model"
            importances += own / n_splits
        else:
            importances += _permutation_importance(est, Z[test], labels[test], rng) / n_splits
    return fold_aucs, fold_p, oof, importances, kind


def _observed_sd(Z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each column's standard deviation over its observed values (0 when none is observed)."""
    if not np.isnan(Z).any():
        return np.asarray(Z.std(axis=0), dtype=np.float64)
    obs = ~np.isnan(Z)
    count = obs.sum(axis=0)
    filled = np.where(obs, Z, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    var = (np.where(obs, Z - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
    return np.asarray(np.sqrt(var), dtype=np.float64)


def _stratified_folds(m: int, n: int, k: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Fold index of each pooled row: each sample's rows shuffled and dealt round-robin."""
    out = np.empty(m + n, dtype=np.int64)
    out[rng.permutation(m)] = np.arange(m) % k
    out[m + rng.permutation(n)] = (np.arange(n) + m) % k
    return out


def _fresh(model: Any) -> Any:
    """An unfitted copy of ``model`` (scikit-learn's ``clone``; a deep copy for duck-typed ones)."""
    if hasattr(model, "get_params"):
        from sklearn.base import clone

        return clone(model)
    import copy

    return copy.deepcopy(model)


def _mann_whitney_greater(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> float:
    """One-sided Mann-Whitney p-value (scipy's; its NaN/axis wrapper skipped: inputs are clean)."""
    fast: Callable[..., Any] = stats.mannwhitneyu  # `_no_deco` is private, not in the stubs
    try:
        res = fast(pos, neg, alternative="greater", _no_deco=True)
    except TypeError:  # a scipy without the private fast path
        res = stats.mannwhitneyu(pos, neg, alternative="greater")
    return smallest_pvalue(float(res.pvalue))


def _scores(est: Any, Z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if hasattr(est, "predict_proba"):
        return np.asarray(est.predict_proba(Z)[:, 1], dtype=np.float64)
    if hasattr(est, "decision_function"):
        return np.asarray(est.decision_function(Z), dtype=np.float64)
    raise InvalidParameterError(
        f"{type(est).__name__} has neither predict_proba nor decision_function; pass a "
        "classifier that scores rows"
    )


def _model_importance(
    est: Any, sd: npt.NDArray[np.float64], Z: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64] | None:
    """The model's own importances: ``feature_importances_``, or ``|coef_|`` times the standard
    deviation of what the coefficients multiply (for a pipeline such as StandardScaler +
    LogisticRegression: the last step's coefficients times the spread of its input, so a
    standardizing step gives the coefficients themselves)."""
    steps = getattr(est, "steps", None)
    if steps and Z is not None and len(steps) > 1 and hasattr(steps[-1][1], "coef_"):
        inner = np.asarray(est[:-1].transform(Z), dtype=np.float64)
        if inner.shape[1] == sd.size:  # one coefficient per input column
            return _model_importance(steps[-1][1], _observed_sd(inner))
    fi = getattr(est, "feature_importances_", None)
    if fi is not None:
        return np.asarray(fi, dtype=np.float64)
    coef = getattr(est, "coef_", None)
    if coef is not None:
        c = np.abs(np.asarray(coef, dtype=np.float64)).reshape(-1, sd.size).mean(0)
        return np.asarray(c * sd, dtype=np.float64)
    return None


def _permutation_importance(
    est: Any, Z: npt.NDArray[np.float64], y: npt.NDArray[np.int64], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    base = _auc(*_split(_scores(est, Z), y))
    out = np.empty(Z.shape[1])
    for j in range(Z.shape[1]):
        Zp = Z.copy()
        Zp[:, j] = Zp[rng.permutation(Z.shape[0]), j]
        out[j] = base - _auc(*_split(_scores(est, Zp), y))
    return out


def _split(
    s: npt.NDArray[np.float64], y: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    return s[y == 1], s[y == 0]
