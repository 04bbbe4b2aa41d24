"""Which shift is it? Covariate, label or concept shift — with the evidence and the treatment.

:func:`diagnose` runs the flow below and returns a :class:`ShiftDiagnosis`:

1. **model** — the user's classifier, or (``model=None``) a standardized logistic regression
   fitted on half of the source; the other half is split into a *calibration* set (fits the
   label-shift estimator) and a *check* set (kept for the consistency and concept tests).
2. **detection** — on the features, a cross-fitted domain classifier
   (:func:`~nndoctor.shift.classifier_test`); on the model's outputs, black-box shift detection
   (:func:`~nndoctor.shift.bbsd_test`, the test that sees label shift).
3. **label weights** — :class:`~nndoctor.shift.LabelShiftEstimator` (EM with bias-corrected
   calibration) fitted on the calibration set, estimated on the target.
4. **label-shift consistency** — if the shift were pure label shift, the check set re-weighted
   by w(y) would look like the target. The check set is thinned by rejection sampling (keep row
   i with probability w(y_i) / max w), which gives an unweighted sample of the re-weighted
   source, and compared to the target with the same domain classifier. Rejection ⇒ P(x | y)
   changed too: covariate shift.
5. **concept tests** (only with target labels) — :func:`~nndoctor.shift.accuracy_gap_test` and
   :func:`~nndoctor.shift.conditional_shift_test` under the hypothesis from steps 2-4 (weights
   1, β(x) or w(y)), and :func:`~nndoctor.shift.decompose_accuracy_drop`.

The decision, at family-wise level ``alpha`` under "no shift" (Bonferroni: ``alpha/4`` for each
of the two detection tests and, with labels, for each of the two concept tests):

* no detection and no concept evidence → ``"none"``;
* detection, consistency not rejected → ``"label"``; rejected → ``"covariate"``;
* concept evidence → ``"concept"`` when nothing else moved, else ``"mixed"``.

Without target labels concept shift cannot be seen at all (P(x) does not move); the result says
so (``concept_ruled_out=False``) instead of reassuring.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_callable,
    check_int,
    check_matrix,
    check_random_state,
    check_same_features,
    check_unit_interval,
    label_spelling_hint,
    to_numpy,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError, LowOverlapWarning
from nndoctor.shift._common import canonical_order, display_names, model_softmax
from nndoctor.shift._engines import DASK_SAMPLE_SIZE, dask_impl, is_dask
from nndoctor.shift.concept import (
    MIN_TARGET_LABELS,
    AccuracyDecomposition,
    AccuracyGapResult,
    ConditionalShiftResult,
    accuracy_gap_test,
    conditional_shift_test,
    decompose_accuracy_drop,
)
from nndoctor.shift.label import MAX_BOOTSTRAP

__all__ = ["KINDS", "Evidence", "Recommendation", "ShiftDiagnosis", "diagnose"]

ShiftKind = Literal["none", "covariate", "label", "concept", "mixed", "insufficient"]
KINDS: tuple[str, ...] = ("none", "covariate", "label", "concept", "mixed", "insufficient")
"""The kinds a diagnosis can return. ``"insufficient"``: a test the decision needs could not run
(too few target or source rows, or too few check rows left for the label-shift consistency test);
it is a warning, never a green "none"."""

MIN_SOURCE_ROWS = 40
"""Fewer labeled source rows: the diagnosis cannot split them into train, calibration, check."""
MIN_TARGET_ROWS = 10
"""Fewer target rows: the detection tests have no power; the diagnosis refuses."""
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Progress = Callable[[float, str], None]


@dataclass(frozen=True, slots=True)
class Evidence(ResultMixin):
    """One test behind the diagnosis.

    Attributes
    ----------
    name : str
        Short name (``"features"``, ``"outputs"``, ``"label_consistency"``, ``"accuracy_gap"``,
        ``"conditional"``).
    question : str
        What the test asks, in words.
    method : str
        The test used.
    statistic, pvalue : float
        Its statistic and p-value.
    level : float
        The level it was judged at (its share of ``alpha``).
    significant : bool
        ``pvalue <= level``.
    detail : str
        What else is worth knowing (AUC, the most-shifted features, ...).
    """

    name: str
    question: str
    method: str
    statistic: float
    pvalue: float
    level: float
    significant: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Recommendation(ResultMixin):
    """The treatment for the diagnosed shift and its estimated effect.

    Attributes
    ----------
    action : str
        The treatment in a few words (``"none"``, ``"class weights w(y)"``,
        ``"importance weights β(x)"``, ``"new labels, retrain"``, ``"new labels (no overlap)"``).
    treatment : str
        One line: what to do.
    how : str
        How to do it with nndoctor (or at all).
    estimated_effect : str
        The expected effect in words (accuracy before -> after, where it can be estimated).
    accuracy_before, accuracy_after : float
        The estimated target accuracy without and with the treatment (NaN when unknown).
    """

    action: str
    treatment: str
    how: str
    estimated_effect: str
    accuracy_before: float
    accuracy_after: float


@dataclass(frozen=True, slots=True)
class ShiftDiagnosis(ResultMixin):
    """Which shift it is, the evidence, the weights, the accuracies and the treatment.

    Attributes
    ----------
    kind : {"none", "covariate", "label", "concept", "mixed", "insufficient"}
        The diagnosis; ``"insufficient"`` when a test it needs could not run (too few rows):
        no evidence either way, reported as a warning.
    explanation : str
        Why, in one or two sentences.
    evidence : tuple of Evidence
        The tests, their statistics and p-values.
    concept_ruled_out : bool
        False without target labels: concept shift is invisible to unlabeled data.
    label_weights : LabelShiftResult or None
        Estimated w(y) = q(y)/p(y) with intervals (None when the tables were too small to
        fit anything: ``kind == "insufficient"``).
    importance_weights : ImportanceWeightsResult or None
        Summary of β(x) (ESS, domain AUC, overlap flag) when a shift was detected.
    source_accuracy : float
        Accuracy on the held-out source check set.
    estimated_target_accuracy : float
        Estimated without target labels under the diagnosed kind (confidence-based, i.e.
        isotonic-calibrated expected accuracy, for "none" and "covariate"; label-shift-adjusted
        for "label").
    estimation_method : str
        Which estimator gave ``estimated_target_accuracy``.
    observed_target_accuracy : float
        Accuracy on the labeled target rows (NaN without labels).
    accuracy_gap, conditional : AccuracyGapResult or None, ConditionalShiftResult or None
        The concept tests (None without target labels).
    decomposition : AccuracyDecomposition or None
        The accuracy drop split into P(x) and P(y | x) parts (None without labels).
    recommendation : Recommendation
        The treatment and its estimated effect.
    n_source, n_target, n_target_labels : int
        Rows used.
    alpha : float
        Family-wise level of the decision under "no shift".
    model : str
        The classifier diagnosed (``"default logistic regression"`` when none was given).
    classes : tuple of str
        The class labels, in the order of the weights (the sorted unique source labels).
    sampled_from : (int, int) or None
        The row counts of the source and target tables when the diagnosis ran on a random
        sample of each (Dask inputs: ``n_source`` and ``n_target`` are then the sample
        sizes); ``None`` when it saw every row.
    """

    kind: ShiftKind
    explanation: str
    evidence: tuple[Evidence, ...]
    concept_ruled_out: bool
    label_weights: Any
    importance_weights: Any
    source_accuracy: float
    estimated_target_accuracy: float
    estimation_method: str
    observed_target_accuracy: float
    accuracy_gap: AccuracyGapResult | None
    conditional: ConditionalShiftResult | None
    decomposition: AccuracyDecomposition | None
    recommendation: Recommendation
    n_source: int
    n_target: int
    n_target_labels: int
    alpha: float
    model: str
    classes: tuple[str, ...] = ()
    sampled_from: tuple[int, int] | None = None

    @property
    def shift_detected(self) -> bool:
        """Whether a shift was found (False for ``"none"`` and ``"insufficient"``)."""
        return self.kind not in ("none", "insufficient")


# ----------------------------------------------------------------------------- helpers


def _default_classifier(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, random_state=seed))


def _domain_classifier(seed: int) -> Any:
    """The domain classifier of the detection and consistency tests: a logistic regression on
    features standardized with each training fold's mean and standard deviation, so that its
    verdict does not depend on the columns' units (an area in mm² or in m² tells the same)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))


def _encode_labels(
    source_y: Any,
    target_y: Any,
    n_source: int,
    n_target: int,
    *,
    names: tuple[str, str] = ("source_X", "target_X"),
    labels: tuple[str, str] = ("source_y", "target_y"),
) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], npt.NDArray[Any]]:
    ls, lt = labels
    ys_raw = to_numpy(source_y, name=ls)
    if ys_raw.ndim == 2 and ys_raw.shape[1] == 1:
        ys_raw = ys_raw[:, 0]
    if ys_raw.ndim != 1 or ys_raw.shape[0] != n_source:
        raise DataValidationError(
            f"{ls} has shape {ys_raw.shape} but {names[0]} has {n_source} rows; pass one "
            "label per source row"
        )
    if _missing(ys_raw).any():
        raise DataValidationError(
            f"{ls} holds missing labels; drop the unlabeled source rows first"
        )
    classes = np.unique(ys_raw)
    if classes.size < 2:
        raise DataValidationError(
            f"{ls} holds {classes.size} class; pass labels of at least two classes"
        )
    ys = np.searchsorted(classes, ys_raw).astype(np.int64)
    yt = np.full(n_target, -1, dtype=np.int64)
    labeled = np.zeros(n_target, dtype=bool)
    if target_y is not None:
        yt_raw = to_numpy(target_y, name=lt)
        if yt_raw.ndim == 2 and yt_raw.shape[1] == 1:
            yt_raw = yt_raw[:, 0]
        if yt_raw.ndim != 1 or yt_raw.shape[0] != n_target:
            raise DataValidationError(
                f"{lt} has shape {yt_raw.shape} but {names[1]} has {n_target} rows; pass one "
                "entry per target row, NaN (or None) where the label is unknown"
            )
        labeled = ~_missing(yt_raw)
        known = yt_raw[labeled]
        if known.dtype.kind == "f" and ys_raw.dtype.kind in "iu":
            if not np.all(np.equal(np.mod(known, 1), 0)):
                raise DataValidationError(f"{lt} holds non-integer labels; {ls} does not")
            known = known.astype(ys_raw.dtype)
        elif known.dtype.kind == "O" or (known.dtype.kind in "US") != (classes.dtype.kind in "US"):
            try:
                known = known.astype(ys_raw.dtype)
            except (TypeError, ValueError):  # text labels against numbers (or the reverse)
                example = next(iter(known), "")
                raise DataValidationError(
                    f"{lt} holds '{example}', which is not a label of {ls} (its labels are "
                    f"{', '.join(map(str, classes[:5]))}); pass the same label values in both "
                    "tables (numbers in both, or the same names)"
                ) from None
        try:
            idx = np.clip(np.searchsorted(classes, known), 0, classes.size - 1)
        except TypeError:  # numbers against text labels: they cannot even be compared
            raise DataValidationError(
                f"{lt} holds '{next(iter(known), '')}', which is not a label of {ls} (its "
                f"labels are {', '.join(map(str, classes[:5]))}); pass the same label values in "
                "both tables (numbers in both, or the same names)"
            ) from None
        unseen = classes[idx] != known
        if unseen.any():
            new = sorted({str(v) for v in known[unseen]})[:5]
            raise DataValidationError(
                f"{lt} holds class(es) {', '.join(new)} that never occur in {ls}"
                f"{label_spelling_hint(new, classes)}; the "
                "model cannot predict a class it never saw — that is a new class, not a shift; "
                "drop those rows or retrain with them"
            )
        yt[labeled] = idx
    return ys, yt, labeled, classes


def _missing(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values))
    if values.dtype.kind == "O":
        return np.array(
            [v is None or (isinstance(v, float) and math.isnan(v)) for v in values], dtype=bool
        )
    return np.zeros(values.shape[0], dtype=bool)


def _stratified_split(
    y: IntArray, fractions: tuple[float, ...], rng: np.random.Generator
) -> list[IntArray]:
    """Split row indices into parts with the given fractions, class by class."""
    parts: list[list[int]] = [[] for _ in fractions]
    edges = np.cumsum(fractions)[:-1]
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        cuts = np.round(edges * idx.size).astype(int)
        for j, chunk in enumerate(np.split(idx, cuts)):
            parts[j].extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


class _Probabilities:
    """Turns the user's model (or the default one) into a ``probs(X)`` function."""

    def __init__(self, model: Any, n_classes: int) -> None:
        self.model = model
        self.n_classes = n_classes

    def __call__(self, X: FloatArray) -> FloatArray:
        model = self.model
        if hasattr(model, "predict_proba"):
            probs = np.asarray(model.predict_proba(X), dtype=np.float64)
        elif _is_module(model):
            probs = model_softmax(model, X)
        elif callable(model):
            probs = np.asarray(model(X), dtype=np.float64)
        else:  # pragma: no cover - checked in _resolve_model
            raise InvalidParameterError("model has no predict_proba")
        if probs.ndim != 2 or probs.shape[1] != self.n_classes:
            raise DataValidationError(
                f"the model returns {probs.shape[-1] if probs.ndim == 2 else '?'} class "
                f"probabilities but source_y has {self.n_classes} classes; the model's classes "
                "must be the sorted unique values of source_y"
            )
        if not np.all(np.isfinite(probs)):
            raise DataValidationError("the model returned NaN or infinite probabilities")
        probs = np.clip(probs, 0.0, None)
        sums = probs.sum(axis=1, keepdims=True)
        return np.asarray(probs / np.where(sums > 0, sums, 1.0))


def _is_module(model: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(model, torch.nn.Module)


def _is_fitted(model: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        return False
    except TypeError:
        return True  # not a scikit-learn estimator: assume ready
    return True


# ----------------------------------------------------------------------------- diagnose


def diagnose(
    source_X: Any,
    source_y: Any,
    target_X: Any,
    target_y: Any = None,
    *,
    model: Any = None,
    alpha: float = 0.05,
    consistency_alpha: float = 0.01,
    n_splits: int = 2,
    n_bootstrap: int = 100,
    weight_intervals: int = 0,
    random_state: Any = None,
    progress: Progress | None = None,
    names: tuple[str, str] | None = None,
    sample_size: int = DASK_SAMPLE_SIZE,
) -> ShiftDiagnosis:
    """Diagnose the kind of distribution shift between source and target data.

    Parameters
    ----------
    source_X : array-like of shape (n_source, d)
        Labeled source (training-distribution) features.
    source_y : array-like of shape (n_source,)
        Their labels (any sortable values; class k is the k-th sorted unique label).
    target_X : array-like of shape (n_target, d)
        Target (deployment) features.
    target_y : array-like of shape (n_target,), optional
        Target labels where known, NaN or None elsewhere. A few hundred suffice for the concept
        tests; without any, concept shift cannot be ruled out.
    model : optional
        The classifier to diagnose: a fitted scikit-learn classifier with ``predict_proba``
        (``source_X`` must then be data it was not trained on), an unfitted one (fitted here on
        half of the source), a ``torch.nn.Module`` returning logits, or a callable returning
        probabilities. Default: a standardized logistic regression fitted on half the source.
    alpha : float
        Family-wise error of the decision under "no shift" (Bonferroni): detection gets
        ``alpha/2``, split equally between its two tests; the concept tests get the other half
        (``alpha/4`` each) when target labels are given.
    consistency_alpha : float
        Level of the label-shift consistency test (rejecting means covariate shift).
    n_splits : int
        Folds of the domain classifier tests.
    n_bootstrap : int
        Bootstrap replicates of the concept tests.
    weight_intervals : int
        Bootstrap replicates behind the label weights' intervals (each refits the calibration;
        0, the default, skips them and the intervals are NaN).
    random_state : int, Generator or None
        Seed of every split, fit and bootstrap; the same seed gives the same diagnosis.
    progress : callable, optional
        Called as ``progress(fraction, text)`` while it runs (the command line draws a bar).
    names : (str, str), optional
        What error messages call ``source_X`` and ``target_X`` (default: those words; with
        names, the labels are "the label column of" each); the command line passes
        ``("the source table (src.csv)", "the target table (tgt.csv)")``.
    sample_size : int
        Dask inputs only (features as ``dask.dataframe.DataFrame`` or ``dask.array.Array``,
        labels as a Dask series or array partitioned like them): the diagnosis runs on a
        random sample of about this many rows of each table, drawn with their labels
        reproducibly from ``random_state``; only the samples travel to the client, and
        ``sampled_from`` states the tables' row counts.

    Returns
    -------
    ShiftDiagnosis

    Notes
    -----
    The flow and the decision rule are in the module notes. References: Lipton, Wang & Smola
    (2018), "Detecting and correcting for label shift with black box predictors", ICML;
    Rabanser, Günnemann & Lipton (2019), "Failing loudly", NeurIPS; Alexandari, Kundaje &
    Shrikumar (2020), ICML; Cai, Namkoong & Yadlowsky (2023), "Diagnosing model performance
    under distribution shift".

    Examples
    --------
    >>> from nndoctor.scenarios import flu_season
    >>> Xs, ys, Xt, yt = flu_season(n_source=1000, n_target=1000, random_state=0).arrays()
    >>> d = diagnose(Xs, ys, Xt, random_state=0)   # no target labels
    >>> d.kind, d.concept_ruled_out
    ('label', False)
    >>> d.recommendation.treatment
    'Re-weight the classes: prior-correct the predictions with the estimated w(y)'
    """
    if any(is_dask(t) for t in (source_X, source_y, target_X, target_y)):  # see _dask_sample
        sampled: ShiftDiagnosis = dask_impl("diagnose")(source_X, source_y, target_X, target_y,
            model=model, alpha=alpha, consistency_alpha=consistency_alpha, n_splits=n_splits,
            n_bootstrap=n_bootstrap, weight_intervals=weight_intervals, random_state=random_state,
            progress=progress, names=names, sample_size=sample_size)  # fmt: skip
        return sampled
    if progress is not None:
        check_callable(progress, name="progress", expected="progress(fraction, text)")
    say: Progress = progress if progress is not None else (lambda fraction, text: None)
    alpha, consistency_alpha, n_splits, n_bootstrap, weight_intervals = _check_options(
        alpha, consistency_alpha, n_splits, n_bootstrap, weight_intervals
    )
    Xs, Xt, (a, b) = _check_tables(source_X, target_X, names)
    if Xs.shape[0] < MIN_SOURCE_ROWS or Xt.shape[0] < MIN_TARGET_ROWS:
        return _too_few_rows(Xs.shape[0], Xt.shape[0], (a, b), alpha, model)
    ys, yt, labeled, classes = _encode_labels(
        source_y, target_y, Xs.shape[0], Xt.shape[0], names=(a, b),
        labels=("source_y", "target_y") if names is None
        else (f"the label column of {a}", f"the label column of {b}"),
    )  # fmt: skip
    # each table's rows in an order fixed by their content (features and label), so that the
    # splits, folds and bootstraps drawn from random_state hold the same rows in any row order
    order_s, order_t = canonical_order(Xs, ys), canonical_order(Xt, yt)
    Xs, ys = Xs[order_s], ys[order_s]
    Xt, yt, labeled = Xt[order_t], yt[order_t], labeled[order_t]
    rng = check_random_state(random_state)
    seed = int(rng.integers(2**31 - 1))

    say(0.0, "fitting the model")
    m = _fit_model(model, Xs, ys, classes, rng, seed)
    probs_of = _Probabilities(m.fitted, classes.size)
    P_cal, P_check, P_t = probs_of(Xs[m.cal]), probs_of(Xs[m.check]), probs_of(Xt)
    n_lab = int(labeled.sum())
    use_labels = n_lab >= MIN_TARGET_LABELS
    level = alpha / 2.0 / 2.0  # detection gets alpha/2 (the concept tests the other half)
    evidence = _detect(source_X, Xs, Xt, np.vstack([P_cal, P_check]), P_t, level, n_splits,
                       seed, say)  # fmt: skip
    detected = evidence[0].significant or evidence[1].significant

    say(0.45, "estimating label-shift weights")
    est, label_res = _label_weights(P_cal, ys[m.cal], P_t, weight_intervals, seed)
    cons = _Consistency()
    if detected:
        cons = _label_consistency(Xs, Xt, ys, m, np.asarray(label_res.weights, dtype=np.float64),
                                  consistency_alpha, n_splits, seed, rng, say)  # fmt: skip
        evidence.extend(cons.evidence)
    ct = _Concept()
    if use_labels:
        say(0.75, "concept tests on the labeled target rows")
        ct = _concept_tests(P_check, ys[m.check], P_t[labeled], yt[labeled], cons.base,
                           cons.low_overlap, cons.beta_check, alpha / 4.0, n_bootstrap,
                           seed)  # fmt: skip
        evidence.extend(ct.evidence)
    kind = _decide_kind(cons, ct)

    say(0.85, "estimating the target accuracy")
    estimated, method_used = _estimate_target_accuracy(cons.base, est, label_res, P_t, P_check,
                                                       ys[m.check], seed)  # fmt: skip
    say(0.9, "recommending a treatment")
    rec = _treatment(kind, cons, ct, use_labels=use_labels, estimated=estimated, est=est,
                     label_res=label_res, P_t=P_t, refit=(m.refit_template, Xs, ys, m.train,
                     m.check))  # fmt: skip
    say(1.0, "done")
    return ShiftDiagnosis(
        kind=kind,
        explanation=_explain(kind, cons.base, detected, ct.concept, use_labels, ct.untestable),
        evidence=tuple(evidence),
        concept_ruled_out=bool(use_labels and not ct.concept and not ct.untestable),
        label_weights=label_res,
        importance_weights=cons.iw_summary,
        source_accuracy=float(np.mean(P_check.argmax(axis=1) == ys[m.check])),
        estimated_target_accuracy=estimated, estimation_method=method_used,
        observed_target_accuracy=ct.observed,
        accuracy_gap=ct.gap, conditional=ct.cond, decomposition=ct.decomp,
        recommendation=rec,
        n_source=int(Xs.shape[0]), n_target=int(Xt.shape[0]), n_target_labels=n_lab,
        alpha=alpha, model=m.name, classes=tuple(str(c) for c in classes),
    )  # fmt: skip


def _check_options(
    alpha: float, consistency_alpha: float, n_splits: int, n_bootstrap: int,
    weight_intervals: int,
) -> tuple[float, float, int, int, int]:  # fmt: skip
    """The options, checked: levels in (0, 1), at least 2 splits and replicates, a capped
    number of weight-interval replicates."""
    alpha = check_unit_interval(alpha, name="alpha")
    consistency_alpha = check_unit_interval(consistency_alpha, name="consistency_alpha")
    n_splits = check_int(n_splits, name="n_splits", minimum=2)
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", minimum=2)
    weight_intervals = check_int(weight_intervals, name="weight_intervals", minimum=0)
    if weight_intervals > MAX_BOOTSTRAP:
        raise InvalidParameterError(
            f"weight_intervals = {weight_intervals} is more than the maximum of "
            f"{MAX_BOOTSTRAP:,} bootstrap replicates (each refits the calibration); pass at most "
            "that many (100 to 1,000 is usual)"
        )
    return alpha, consistency_alpha, n_splits, n_bootstrap, weight_intervals


def _check_tables(
    source_X: Any, target_X: Any, names: tuple[str, str] | None
) -> tuple[FloatArray, FloatArray, tuple[str, str]]:
    """The two feature tables as float matrices with the same columns, and what messages call
    them."""
    a, b = display_names(names, ("source_X", "target_X"))
    Xs: FloatArray = np.asarray(check_matrix(source_X, name=a, min_rows=1), dtype=np.float64)
    Xt: FloatArray = np.asarray(check_matrix(target_X, name=b, min_rows=1), dtype=np.float64)
    check_same_features(Xs, Xt, names=("source", "target") if names is None else (a, b))
    return Xs, Xt, (a, b)


@dataclass(frozen=True, slots=True)
class _Model:
    """Step 1's outcome: the model, its name, the template to refit, and the source splits."""

    fitted: Any
    name: str
    refit_template: Any
    train: IntArray
    cal: IntArray
    check: IntArray


def _fit_model(
    model: Any, Xs: FloatArray, ys: IntArray, classes: npt.NDArray[Any],
    rng: np.random.Generator, seed: int,
) -> _Model:  # fmt: skip
    """Step 1: the model to diagnose (the user's, or fitted on half the source), the splits."""
    from sklearn.base import clone

    if model is None:
        train, cal, check = _stratified_split(ys, (0.5, 0.25, 0.25), rng)
        fitted: Any = _default_classifier(seed).fit(Xs[train], ys[train])
        model_name = "default logistic regression"
        refit_template: Any = _default_classifier(seed)
    elif hasattr(model, "fit") and hasattr(model, "predict_proba") and not _is_fitted(model):
        train, cal, check = _stratified_split(ys, (0.5, 0.25, 0.25), rng)
        fitted = clone(model).fit(Xs[train], ys[train])
        model_name = type(model).__name__
        refit_template = model
    elif hasattr(model, "predict_proba") or _is_module(model) or callable(model):
        train = np.zeros(0, dtype=np.int64)
        cal, check = _stratified_split(ys, (0.5, 0.5), rng)
        fitted = model
        model_name = type(model).__name__
        refit_template = None
    else:
        raise InvalidParameterError(
            f"model must be a scikit-learn classifier with predict_proba, a torch.nn.Module or a "
            f"callable returning probabilities; got {type(model).__name__}"
        )
    for part, name in ((cal, "calibration"), (check, "check")):
        missing = set(range(classes.size)) - set(np.unique(ys[part]).tolist())
        if missing:
            raise DataValidationError(
                f"the source {name} split has no row of class(es) "
                f"{', '.join(str(classes[m]) for m in sorted(missing))}; pass more labeled "
                "source rows (at least 4 per class)"
            )
    return _Model(fitted, model_name, refit_template, train, cal, check)


def _detect(
    source_X: Any, Xs: FloatArray, Xt: FloatArray, P_ref: FloatArray, P_t: FloatArray,
    level: float, n_splits: int, seed: int, say: Progress,
) -> list[Evidence]:  # fmt: skip
    """Step 2: whether the inputs (domain classifier) and the model's outputs (BBSD) moved."""
    from nndoctor.shift import bbsd_test, classifier_test

    say(0.15, "testing the features (domain classifier)")
    columns = [str(c) for c in source_X.columns] if hasattr(source_X, "columns") else None
    if columns is not None and len(columns) == Xs.shape[1]:
        import pandas as pd

        feat = classifier_test(
            pd.DataFrame(Xs, columns=columns), pd.DataFrame(Xt, columns=columns),
            model=_domain_classifier(seed), n_splits=n_splits, random_state=seed,
        )  # fmt: skip
    else:
        feat = classifier_test(
            Xs, Xt, model=_domain_classifier(seed), n_splits=n_splits, random_state=seed
        )
    say(0.35, "testing the model's outputs (BBSD)")
    outp = bbsd_test(P_ref, P_t)
    top = ", ".join(list(feat.feature_importances)[:3])
    return [
        Evidence(
            "features",
            "Do the target inputs differ from the source inputs?",
            "domain classifier (logistic, cross-fitted)",
            float(feat.statistic),
            float(feat.pvalue),
            level,
            bool(feat.pvalue <= level),
            f"AUC {feat.statistic:.3f}; most telling features: {top}",
        ),
        Evidence(
            "outputs",
            "Do the model's predictions differ (black-box shift detection)?",
            "BBSD: χ² on predicted classes + per-class KS",
            float(outp.statistic),
            float(outp.pvalue),
            level,
            bool(outp.pvalue <= level),
            "predicted-class counts source "
            f"{outp.source_counts.tolist()} vs target {outp.target_counts.tolist()}",
        ),
    ]


def _label_weights(
    P_cal: FloatArray, y_cal: IntArray, P_t: FloatArray, weight_intervals: int, seed: int
) -> tuple[Any, Any]:
    """Step 3: the label-shift weights w(y) (EM-BCTS fitted on the calibration split)."""
    from nndoctor.shift import LabelShiftEstimator

    est = LabelShiftEstimator("em-bcts", n_bootstrap=weight_intervals, random_state=seed)
    est.fit(P_cal, y_cal)
    return est, est.estimate(P_t)


@dataclass(frozen=True, slots=True)
class _Consistency:
    """Step 4's outcome (the defaults: nothing detected, so nothing tested)."""

    base: ShiftKind = "none"
    evidence: tuple[Evidence, ...] = ()
    untestable: bool = False
    weighter: Any = None
    iw_summary: Any = None
    beta_check: FloatArray | None = None

    @property
    def low_overlap(self) -> bool:
        """Whether the importance weights found that source and target barely overlap."""
        return bool(self.iw_summary is not None and self.iw_summary.low_overlap)


def _label_consistency(
    Xs: FloatArray, Xt: FloatArray, ys: IntArray, m: _Model, w: FloatArray,
    consistency_alpha: float, n_splits: int, seed: int, rng: np.random.Generator,
    say: Progress,
) -> _Consistency:  # fmt: skip
    """Step 4: label shift (w(y) explains the shift) or covariate shift; and the weights β(x)."""
    from nndoctor.shift import ImportanceWeighter, classifier_test

    check, cal, train = m.check, m.cal, m.train
    untestable_consistency = False
    say(0.55, "label-shift consistency test")
    keep = rng.random(check.size) < w[ys[check]] / max(float(w.max()), 1e-12)
    kept = check[keep]
    if kept.size >= n_splits * 2:
        cons = classifier_test(
            Xs[kept], Xt, model=_domain_classifier(seed), n_splits=n_splits,
            importance="none", random_state=seed,
        )  # fmt: skip
        cons_p, cons_stat = float(cons.pvalue), float(cons.statistic)
    else:  # too few rows kept to test: no evidence either way
        cons_p, cons_stat = float("nan"), float("nan")
        untestable_consistency = True
    consistent = cons_p > consistency_alpha
    evidence = Evidence(
        "label_consistency",
        "Does re-weighting the source by w(y) make it look like the target?",
        "domain classifier on the w(y)-thinned check set",
        cons_stat,
        cons_p,
        consistency_alpha,
        not consistent and not untestable_consistency,  # NaN p: no evidence, not a rejection
        f"{kept.size} of {check.size} check rows kept; "
        + (
            "too few to test: label and covariate shift cannot be told apart"
            if untestable_consistency
            else "label shift explains the shift"
            if consistent
            else "P(x | y) changed as well: label shift alone does not explain it"
        ),
    )
    say(0.65, "importance weights")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowOverlapWarning)
        weighter = ImportanceWeighter(
            "classifier", n_splits=n_splits, random_state=seed, warn=True
        ).fit(Xs[np.concatenate([cal, train])] if train.size else Xs[cal], Xt)
    for item in caught:
        if not issubclass(item.category, LowOverlapWarning):
            warnings.warn_explicit(
                item.message, item.category, item.filename, item.lineno
            )  # pragma: no cover - re-raise anything else unchanged
    return _Consistency(
        base="label" if consistent else "covariate",
        evidence=(evidence,),
        untestable=untestable_consistency,
        weighter=weighter,
        iw_summary=weighter.summary(),
        beta_check=np.asarray(weighter.weights(Xs[check]), dtype=np.float64),
    )


@dataclass(frozen=True, slots=True)
class _Concept:
    """Step 5's outcome (the defaults: no target labels, so no concept test)."""

    concept: bool = False
    untestable: bool = False
    observed: float = float("nan")
    gap: AccuracyGapResult | None = None
    cond: ConditionalShiftResult | None = None
    decomp: AccuracyDecomposition | None = None
    evidence: tuple[Evidence, ...] = ()


def _concept_tests(
    P_check: FloatArray, y_check: IntArray, P_tl: FloatArray, y_tl: IntArray, base: str,
    low_overlap: bool, beta_check: FloatArray | None, c_level: float, n_bootstrap: int,
    seed: int,
) -> _Concept:  # fmt: skip
    """Step 5: whether P(y | x) changed, on the labeled target rows, under steps 2-4's shift."""
    observed = float(np.mean(P_tl.argmax(axis=1) == y_tl))
    # under label shift P(x | y) is the invariant: condition on the class, no weights
    given = "label" if base == "label" else "input"
    w_h = beta_check if base == "covariate" else None
    gap = accuracy_gap_test(
        P_check, y_check, P_tl, y_tl, source_weights=w_h, given=given, alpha=c_level,
        n_bootstrap=n_bootstrap, random_state=seed,
    )  # fmt: skip
    cond = conditional_shift_test(
        P_check, y_check, P_tl, y_tl, source_weights=w_h, given=given, alpha=c_level
    )
    decomp = decompose_accuracy_drop(
        P_check, y_check, P_tl, y_tl, source_weights=beta_check,
        n_bootstrap=n_bootstrap, random_state=seed,
    )  # fmt: skip
    concept = gap.concept_shift_detected or cond.concept_shift_detected
    untestable = False
    if base == "covariate" and low_overlap:
        # the model extrapolates where the source has no data: its calibration does not
        # transfer, so an accuracy shortfall cannot be pinned on P(y | x)
        untestable = concept
        concept = False
    hyp = {"none": "no shift", "label": "label shift", "covariate": "covariate shift"}[base]
    evidence = (
        Evidence(
            "accuracy_gap",
            f"Is the target accuracy below its prediction under {hyp}?",
            "observed vs predicted accuracy, margin from the estimator's uncertainty",
            float(gap.statistic),
            float(gap.pvalue),
            c_level,
            bool(gap.concept_shift_detected),
            f"observed {gap.observed_accuracy:.3f} vs predicted "
            f"{gap.predicted_accuracy:.3f} ± {gap.margin:.3f} on {y_tl.size} labeled rows",
        ),
        Evidence(
            "conditional",
            f"Does the label tell the domains apart beyond the input (under {hyp})?",
            "domain logistic regression on p(y|x) given the input (or class), robust Wald test",
            float(cond.statistic),
            float(cond.pvalue),
            c_level,
            bool(cond.concept_shift_detected),
            f"coefficient {cond.coefficient:.3f} ± {cond.standard_error:.3f}",
        ),
    )
    return _Concept(bool(concept), untestable, observed, gap, cond, decomp, evidence)


def _decide_kind(cons: _Consistency, ct: _Concept) -> ShiftKind:
    """The kind: step 4's shift (none, label or covariate), made concept or mixed by step 5's
    evidence, or insufficient when step 4 could not test and step 5 found nothing."""
    kind: ShiftKind = ("concept" if cons.base == "none" else "mixed") if ct.concept else cons.base
    if cons.untestable and not ct.concept:
        kind = "insufficient"
    return kind


def _estimate_target_accuracy(
    base: str, est: Any, label_res: Any, P_t: FloatArray, P_check: FloatArray,
    y_check: IntArray, seed: int,
) -> tuple[float, str]:  # fmt: skip
    """The target accuracy without labels, by the estimator that fits the diagnosed shift."""
    if base == "label":
        # expected accuracy of the model's own predictions under the prior-corrected,
        # calibrated posteriors (the same numbers the recommendation's effect uses)
        P_adj = est.adjust(P_t, label_res)
        estimated = float(np.mean(P_adj[np.arange(P_t.shape[0]), P_t.argmax(axis=1)]))
        return estimated, "label-shift (prior-corrected calibrated posteriors)"
    from nndoctor.shift import estimate_accuracy

    # no label shift: the confidence-based estimate (isotonic calibration on the check
    # set, expected accuracy of the model's predictions), right under covariate shift too
    acc_est = estimate_accuracy(
        P_check, y_check, P_t, method="confidence-based", n_bootstrap=0, random_state=seed
    )
    return float(acc_est.accuracy), str(acc_est.method)


def _explain(
    kind: str, base: str, detected: bool, concept: bool, use_labels: bool, untestable: bool
) -> str:
    """The diagnosis in words: the kind, what it rests on, and what could not be ruled out."""
    no_labels = (
        " Without target labels concept shift (the same inputs meaning something else) cannot "
        "be ruled out: label a few hundred target rows and run again."
    )
    text = {
        "none": "Neither the inputs nor the model's outputs moved detectably.",
        "label": (
            "The class proportions changed and re-weighting the source by w(y) explains the "
            "shift: label shift (P(x | y) unchanged)."
        ),
        "covariate": (
            "The inputs moved in a way re-weighting the classes does not explain: covariate "
            "shift (P(x) changed)."
        ),
        "concept": (
            "The inputs did not move, but the labeled target rows disagree with the model more "
            "than it predicts: concept shift (P(y | x) changed)."
        ),
        "mixed": (
            f"The inputs moved ({base} shift) and, beyond that, the labeled target rows "
            "disagree with the model: P(y | x) changed as well."
        ),
        "insufficient": (
            "Insufficient data: the inputs or outputs moved, but too few source check rows are "
            "left after re-weighting by w(y) to test whether label shift explains it, so label "
            "and covariate shift cannot be told apart; pass more labeled source rows."
        ),
    }[kind]
    extrapolates = (
        " The labeled target rows are less accurate than the source predicts, but source and "
        "target barely overlap, so the model extrapolates: that shortfall cannot be told "
        "apart from concept shift."
    )
    return text + ("" if use_labels else no_labels) + (extrapolates if untestable else "")


def _treatment(
    kind: ShiftKind, cons: _Consistency, ct: _Concept, *, use_labels: bool, estimated: float,
    est: Any, label_res: Any, P_t: FloatArray,
    refit: tuple[Any, FloatArray, IntArray, IntArray, IntArray],
) -> Recommendation:  # fmt: skip
    """What to do: more data when the diagnosis is insufficient (no weighted refit paid for),
    else the treatment of the kind (:func:`_recommend`)."""
    if kind == "insufficient":
        return _more_data_recommendation(estimated, reweighted=cons.untestable)
    return _recommend(kind, cons.base, use_labels=use_labels, estimated=estimated,
                      observed=ct.observed, est=est, label_res=label_res, P_t=P_t,
                      iw_summary=cons.iw_summary, weighter=cons.weighter,
                      beta_check=cons.beta_check, refit=refit, decomp=ct.decomp)  # fmt: skip


def _more_data_recommendation(estimated: float, *, reweighted: bool = False) -> Recommendation:
    """The treatment when the tests could not decide: collect more rows (``reweighted``: the
    tables were big enough, but too few source check rows were left after the w(y) thinning)."""
    how = (
        "pass more labeled source rows, above all of the classes the target has more of: too "
        "few of the source's check rows were left after re-weighting by w(y) to run the "
        "label_consistency test; then rerun"
        if reweighted
        else f"pass at least {MIN_SOURCE_ROWS} labeled source rows and {MIN_TARGET_ROWS} "
        "target rows (a few hundred of each for useful power), then rerun"
    )
    return Recommendation(
        "more data",
        "Collect more rows before acting: the tests could not run on so few",
        how,
        "unknown",
        estimated,
        float("nan"),
    )


def _too_few_rows(
    n_source: int, n_target: int, names: tuple[str, str], alpha: float, model: Any
) -> ShiftDiagnosis:
    """The diagnosis of tables too small to test: kind ``"insufficient"``, with a warning."""
    from nndoctor.shift._common import warn_small

    what = (
        f"{names[0]} has {n_source} row(s), fewer than the {MIN_SOURCE_ROWS} the diagnosis "
        "splits into train, calibration and check sets"
        if n_source < MIN_SOURCE_ROWS
        else f"{names[1]} has {n_target} row(s), fewer than the {MIN_TARGET_ROWS} the "
        "detection tests need"
    )
    warn_small(f"{what}; the diagnosis is 'insufficient' (no evidence either way)")
    nan = float("nan")
    return ShiftDiagnosis(
        kind="insufficient",
        explanation=f"Insufficient data: {what}, so no test could run; pass more rows.",
        evidence=(),
        concept_ruled_out=False,
        label_weights=None,
        importance_weights=None,
        source_accuracy=nan,
        estimated_target_accuracy=nan,
        estimation_method="none (too few rows)",
        observed_target_accuracy=nan,
        accuracy_gap=None,
        conditional=None,
        decomposition=None,
        recommendation=_more_data_recommendation(nan),
        n_source=n_source,
        n_target=n_target,
        n_target_labels=0,
        alpha=alpha,
        model="default logistic regression" if model is None else type(model).__name__,
    )


def _recommend(
    kind: str,
    base: str,
    *,
    use_labels: bool,
    estimated: float,
    observed: float,
    est: Any,
    label_res: Any,
    P_t: FloatArray,
    iw_summary: Any,
    weighter: Any,
    beta_check: FloatArray | None,
    refit: tuple[Any, FloatArray, IntArray, IntArray, IntArray],
    decomp: AccuracyDecomposition | None,
) -> Recommendation:
    """The treatment of a decided kind, with its estimated effect on the target accuracy."""
    nan = float("nan")
    before = observed if use_labels else estimated
    if kind == "none":
        how = (
            "keep monitoring (nndoctor shift stream)"
            if use_labels
            else "label a few hundred target rows and rerun with --label to rule out concept shift"
        )
        return Recommendation("none", "No treatment needed", how, "none needed", before, before)
    if kind == "concept" or (kind == "mixed" and decomp is not None):
        gain = decomp.concept_part if decomp is not None else nan
        effect = (
            f"up to +{gain:.3f} accuracy: the part of the drop due to P(y | x)"
            if math.isfinite(gain)
            else "unknown"
        )
        extra = (
            f"; the inputs moved too ({base} shift): weight the source for that part"
            if kind == "mixed"
            else ""
        )
        return Recommendation(
            "new labels, retrain",
            "Get target labels and retrain (or fine-tune) on recent target data",
            "the source labels are no longer right for these inputs; retrain on labeled target "
            "rows (nndoctor.shift.adapt_on_drift retrains on a recent window)" + extra,
            effect,
            before,
            before + gain if math.isfinite(gain) else nan,
        )
    if base == "label":
        P_adj = est.adjust(P_t, label_res)
        plain = float(np.mean(P_adj[np.arange(P_t.shape[0]), P_t.argmax(axis=1)]))
        corrected = float(np.mean(P_adj.max(axis=1)))
        return Recommendation(
            "class weights w(y)",
            "Re-weight the classes: prior-correct the predictions with the estimated w(y)",
            "LabelShiftEstimator('em-bcts').fit(held-out probs, labels).estimate(target "
            "probs), then .adjust(probs); or retrain with sample_weight = w(y) "
            "(nndoctor shift labels)",
            f"estimated accuracy {plain:.3f} -> {corrected:.3f}",
            plain,
            corrected,
        )
    # covariate
    template, Xs, ys, train, check = refit
    if iw_summary is not None and iw_summary.low_overlap:
        return Recommendation(
            "new labels (no overlap)",
            "Collect labeled target data: the target lies where the source has (almost) no data",
            f"importance weighting cannot correct this (ESS ratio {iw_summary.ess_ratio:.3f}, "
            f"domain AUC {iw_summary.domain_auc:.3f}); label target rows and retrain",
            "weighting would not help",
            before,
            nan,
        )
    after = nan
    if template is not None and train.size and weighter is not None and beta_check is not None:
        from sklearn.base import clone

        beta_train = weighter.weights(Xs[train])
        try:
            reweighted = clone(template).fit(
                Xs[train], ys[train], **_sample_weight_kw(template, beta_train)
            )
        except TypeError:
            reweighted = None
        if reweighted is not None:  # β on the check set: step 4's, not computed again
            correct = reweighted.predict_proba(Xs[check]).argmax(axis=1) == ys[check]
            after = float(np.sum(beta_check * correct) / np.sum(beta_check))
    effect = (
        f"estimated accuracy {before:.3f} -> {after:.3f} (importance-weighted check set)"
        if math.isfinite(after)
        else "retrain with the weights and compare on a weighted validation set"
    )
    return Recommendation(
        "importance weights β(x)",
        "Importance-weight the source: retrain with sample_weight = β(x)",
        "ImportanceWeighter('classifier').fit(source_X, target_X).weights(train_X) as "
        "sample_weight (nndoctor shift weights)",
        effect,
        before,
        after,
    )


def _sample_weight_kw(template: Any, weights: FloatArray) -> dict[str, Any]:
    """``sample_weight`` for an estimator, or routed to a pipeline's last step."""
    steps = getattr(template, "steps", None)
    if steps:
        return {f"{steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}
