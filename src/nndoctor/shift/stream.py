"""Streaming shift monitors: river's drift detectors plus batch tests with error control.

:class:`ShiftMonitor` consumes batches in time order — features, the model's predictions (or
class probabilities) and, when they arrive, the labels — and watches three kinds of signal:

* the **error stream** (needs labels): river's detectors (ADWIN, DDM, EDDM, Page-Hinkley, KSWIN,
  HDDM-A, HDDM-W) fed one 0/1 error per row; a change is declared when ``min_votes`` distinct
  detectors fire within ``vote_window`` rows (a vote keeps any one detector's false alarms out);
* the **per-class prediction rates**: one ADWIN per class on the indicator "predicted class k";
* **batch-level two-sample tests** of each batch against the reference: features (per-feature KS,
  Bonferroni over features), predicted classes (χ²) and labels (χ²). Their family-wise error over
  the whole stream is controlled by alpha-spending: batch t is tested at level
  :math:`\\alpha_t = \\alpha\\,\\gamma_t` with :math:`\\sum_t \\gamma_t \\le 1` — ``"bonferroni"``
  (:math:`\\gamma_t = 1/H` over a horizon of H batches) or ``"pi2"``
  (:math:`\\gamma_t = 6 / (\\pi^2 t^2)`, any horizon).

Then it says **what kind** of change happened, from the evidence that separates the kinds:

* P(y) moved while the inputs and the model's predictions held → **concept** shift: since
  :math:`P(y) = \\int P(y\\mid x)\\,dP(x)`, a label distribution can only move over a fixed P(x) if
  P(y | x) moved (river's SEA and Agrawal streams look like this);
* P(y) moved and the inputs moved *the way a new class mix predicts* → **label** shift. The check:
  under label shift P(x | y) is fixed, so the model's per-class error rate P(ŷ = y | y = k) (the
  invariance black-box shift estimation rests on, Lipton et al. 2018) and each feature's
  class-conditional law P(x_j | y = k) (univariate KS tests, as in Rabanser et al. 2019) match
  the reference on the change's labeled rows; all these tests together, Bonferroni-corrected,
  at ``alpha``. A rise of the error rate that this check explains comes from the class mix;
* the inputs moved, and with the labels only in a way the class mix does not explain (or not at
  all), while the error rate held → **covariate** shift; the inputs moved and the error rate rose
  without a label-shift explanation → **mixed**; only the error rate rose → **concept**.

The detectors are river's (Bifet & Gavaldà 2007; Gama et al. 2004; Baena-García et al. 2006;
Page 1954; Raab et al. 2020; Frías-Blanco et al. 2015); this module only wires and votes.

References: Z. Lipton, Y.-X. Wang, A. Smola, "Detecting and correcting for label shift with
black box predictors", ICML 2018; S. Rabanser, S. Günnemann, Z. Lipton, "Failing loudly: an
empirical study of methods for detecting dataset shift", NeurIPS 2019.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy import stats

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_fitted,
    check_int,
    check_labels,
    check_matrix,
    check_unit_interval,
    to_numpy,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._univariate import _ks_2samp

__all__ = [
    "DETECTORS",
    "BatchTest",
    "ChangeEvent",
    "ChangePoint",
    "MonitorReport",
    "ShiftMonitor",
]

DetectorName = Literal["adwin", "ddm", "eddm", "page_hinkley", "kswin", "hddm_a", "hddm_w"]
DETECTORS: tuple[str, ...] = tuple(sorted(get_args(DetectorName)))
"""River detectors the monitor can run on the error stream."""
DEFAULT_DETECTORS: tuple[str, ...] = ("adwin", "ddm", "hddm_a", "hddm_w", "page_hinkley")
SignalKind = Literal["none", "covariate", "label", "concept", "mixed"]
_SPENDING = ("bonferroni", "pi2")


def _make_detector(name: str, seed: int | None) -> Any:
    from river import drift
    from river.drift import binary

    if name == "adwin":
        return drift.ADWIN()  # type: ignore[no-untyped-call]  # river: unannotated __init__
    if name == "page_hinkley":
        return drift.PageHinkley(mode="up")
    if name == "kswin":
        return drift.KSWIN(seed=seed)
    if name == "ddm":
        return binary.DDM()
    if name == "eddm":
        return binary.EDDM()
    if name == "hddm_a":
        return binary.HDDMA()  # type: ignore[no-untyped-call]  # river: unannotated __init__
    return binary.HDDMW()  # type: ignore[no-untyped-call]  # river: unannotated __init__


@dataclass(frozen=True, slots=True)
class ChangeEvent(ResultMixin):
    """One detector or test firing.

    Attributes
    ----------
    batch : int
        Index of the batch (0-based, in order of :meth:`ShiftMonitor.update` calls).
    sample : int
        Index of the row (over the whole stream) at which it fired; for batch tests the batch's
        first row.
    time : str or None
        The batch's time label, when one was given.
    signal : str
        ``"error_rate"``, ``"prediction_rate[k]"``, ``"features"``, ``"predictions"`` or
        ``"labels"``.
    detector : str
        The river detector (``"adwin"``, …), ``"vote"`` for the error vote, or the batch test
        (``"ks"``, ``"chi2"``).
    statistic, pvalue, level : float
        For batch tests: the statistic, its p-value and the spent level :math:`\\alpha_t`;
        NaN for river detectors.
    """

    batch: int
    sample: int
    time: str | None
    signal: str
    detector: str
    statistic: float
    pvalue: float
    level: float


@dataclass(frozen=True, slots=True)
class BatchTest(ResultMixin):
    """A batch-level two-sample test against the reference, at its spent level."""

    batch: int
    signal: str
    method: str
    statistic: float
    pvalue: float
    level: float
    rejected: bool


@dataclass(frozen=True, slots=True)
class ChangePoint(ResultMixin):
    """Events grouped into one change, with its kind.

    Attributes
    ----------
    batch, sample : int
        Where the first event of the group fired.
    time : str or None
        Its time label.
    kind : {"covariate", "label", "concept", "mixed"}
        Which shift the signals point to.
    signals : tuple of str
        The signals that fired in the group.
    reason : str
        Why this kind: the evidence, in words.
    consistency_pvalue : float
        p-value of the label-shift check on the change's labeled rows (the model's per-class
        error rates and each feature's class-conditional law against the reference,
        Bonferroni over all those tests; see the module notes). NaN when it did not run: the
        labels had not moved, or no labeled rows with features or predictions came after it.
    consistency_rows : int
        Labeled rows that check used (0 when it did not run).
    """

    batch: int
    sample: int
    time: str | None
    kind: SignalKind
    signals: tuple[str, ...]
    reason: str
    consistency_pvalue: float = float("nan")
    consistency_rows: int = 0


@dataclass(frozen=True, slots=True)
class MonitorReport(ResultMixin):
    """What a :class:`ShiftMonitor` saw.

    Attributes
    ----------
    drift_detected : bool
        Whether any change was declared.
    kind : {"none", "covariate", "label", "concept", "mixed"}
        Kind of the first change (``"none"`` without one).
    changes : tuple of ChangePoint
        Declared changes in time order.
    events : tuple of ChangeEvent
        Every detector firing and rejected batch test.
    batch_tests : tuple of BatchTest
        Every batch-level test run.
    error_rate : tuple of float
        Error rate per batch (NaN where a batch had no labels).
    n_batches, n_samples : int
        Stream length.
    alpha, spending, horizon, detectors, min_votes
        The settings.
    """

    drift_detected: bool
    kind: SignalKind
    changes: tuple[ChangePoint, ...]
    events: tuple[ChangeEvent, ...]
    batch_tests: tuple[BatchTest, ...]
    error_rate: tuple[float, ...]
    n_batches: int
    n_samples: int
    alpha: float
    spending: str
    horizon: int
    detectors: tuple[str, ...]
    min_votes: int


class ShiftMonitor:
    """Watch a deployed classifier's stream for covariate, label and concept shift.

    Parameters
    ----------
    detectors : sequence of str
        River detectors on the error stream, from :data:`DETECTORS`. Default: ADWIN, DDM,
        HDDM-A, HDDM-W and Page-Hinkley (EDDM and KSWIN raise many false alarms on a 0/1 stream
        and are opt-in).
    min_votes : int
        Distinct error detectors that must fire within ``vote_window`` rows to declare a change
        of the error rate.
    vote_window : int
        Rows within which votes count together.
    alpha : float
        Family-wise error level of all batch tests over the stream (horizon).
    spending : {"bonferroni", "pi2"}
        How ``alpha`` is spent over batches (see the module notes).
    horizon : int
        Batches covered by ``"bonferroni"``; after it the spending restarts and the guarantee is
        per horizon.
    prediction_rates : bool
        Run one ADWIN per class on the predicted-class indicators.
    group_window : int
        Events within this many batches of a change's first event belong to that change.
    random_state : int or None
        Seed for KSWIN's sub-sampling.

    Notes
    -----
    Reference data go to :meth:`fit` (features, predictions and labels of data the model is
    known to handle), the stream to :meth:`update` one batch at a time.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> mon = ShiftMonitor(random_state=0).fit(rng.normal(size=(500, 3)),
    ...                                        predictions=rng.integers(0, 2, 500),
    ...                                        labels=rng.integers(0, 2, 500))
    >>> for t in range(30):
    ...     X = rng.normal(size=(100, 3))
    ...     y = rng.integers(0, 2, 100)
    ...     err = rng.random(100) < (0.1 if t < 15 else 0.5)   # the answers change at t = 15
    ...     _ = mon.update(X, predictions=np.where(err, 1 - y, y), labels=y, time=str(t))
    >>> rep = mon.report()
    >>> rep.kind, rep.changes[0].time in {"15", "16", "17"}
    ('concept', True)
    """

    def __init__(
        self,
        *,
        detectors: Sequence[str] = DEFAULT_DETECTORS,
        min_votes: int = 2,
        vote_window: int = 1000,
        alpha: float = 0.05,
        spending: str = "bonferroni",
        horizon: int = 100,
        prediction_rates: bool = True,
        group_window: int = 10,
        random_state: int | None = None,
    ) -> None:
        # a bare string is kept as given (and rejected in fit), not split into letters
        self.detectors: Sequence[str] = (
            detectors if isinstance(detectors, str) else tuple(detectors)
        )
        self.min_votes = min_votes
        self.vote_window = vote_window
        self.alpha = alpha
        self.spending = spending
        self.horizon = horizon
        self.prediction_rates = prediction_rates
        self.group_window = group_window
        self.random_state = random_state

    # ------------------------------------------------------------------ set-up

    def _check_params(self) -> None:
        if isinstance(self.detectors, str):
            raise InvalidParameterError(
                f"detectors must be a list of detector names, got the string "
                f"{self.detectors!r}; pass detectors=[{self.detectors!r}]"
            )
        for name in self.detectors:
            check_choice(name, DETECTORS, name="detector")
        if not self.detectors:
            raise InvalidParameterError(
                f"detectors is empty; pass at least one of: {', '.join(DETECTORS)}"
            )
        check_int(self.min_votes, name="min_votes", minimum=1)
        if self.min_votes > len(set(self.detectors)):
            raise InvalidParameterError(
                f"min_votes={self.min_votes} but only {len(set(self.detectors))} detector(s) "
                "run; lower min_votes or add detectors"
            )
        check_int(self.vote_window, name="vote_window", minimum=1)
        check_unit_interval(self.alpha, name="alpha")
        check_choice(self.spending, _SPENDING, name="spending")
        check_int(self.horizon, name="horizon", minimum=1)
        check_int(self.group_window, name="group_window", minimum=0)

    def fit(
        self,
        X: Any = None,
        *,
        predictions: Any = None,
        labels: Any = None,
    ) -> ShiftMonitor:
        """Store the reference: features, predicted classes (or probabilities) and labels.

        Any of the three may be omitted; the batch test of a signal runs only when the
        reference has it. Returns ``self``.
        """
        self._check_params()
        self.reference_X_ = None if X is None else check_matrix(X, name="reference X", min_rows=2)
        n = None if self.reference_X_ is None else self.reference_X_.shape[0]
        self.reference_predictions_ = (
            None if predictions is None else self._classes(predictions, "reference predictions", n)
        )
        self.reference_labels_ = (
            None if labels is None else self._classes(labels, "reference labels", n)
        )
        self._ref_sorted_X = (
            None
            if self.reference_X_ is None
            else np.ascontiguousarray(np.sort(self.reference_X_, axis=0).T)
        )
        self._ref_classes = _reference_by_class(
            self.reference_X_, self.reference_predictions_, self.reference_labels_
        )
        self._reset_state()
        return self

    def _reset_state(self) -> None:
        self._detectors = {name: _make_detector(name, self.random_state) for name in self.detectors}
        self._rate_detectors: dict[int, Any] = {}
        self._votes: dict[str, int] = {}
        self._events: list[ChangeEvent] = []
        self._tests: list[BatchTest] = []
        self._error_rate: list[float] = []
        self._batch_times: list[str | None] = []
        self._batch_start: list[int] = []
        self._rejecting: dict[str, bool] = {}
        self._windows: list[_Window] = []
        self.n_batches_ = 0
        self.n_samples_ = 0
        self._spend_index = 0

    def reset(self, X: Any = None, *, predictions: Any = None, labels: Any = None) -> ShiftMonitor:
        """Start afresh with a new reference (e.g. after retraining); forgets the history."""
        return self.fit(X, predictions=predictions, labels=labels)

    @staticmethod
    def _classes(values: Any, name: str, n_rows: int | None) -> npt.NDArray[np.int64]:
        arr = to_numpy(values, name=name)
        if arr.ndim == 2 and arr.shape[1] > 1:
            if not np.all(np.isfinite(arr)):
                raise DataValidationError(f"{name} hold NaN or infinity; pass probabilities")
            arr = arr.argmax(axis=1)
        arr = check_labels(arr, name=name, n_rows=n_rows)
        if arr.dtype.kind not in "iu" and not (
            arr.dtype.kind == "f" and np.all(np.equal(np.mod(arr, 1), 0))
        ):
            raise DataValidationError(
                f"{name} must be integer class indices (or a matrix of class probabilities); "
                "encode the classes as 0..K-1 first"
            )
        out = arr.astype(np.int64)
        if out.size and out.min() < 0:
            raise DataValidationError(f"{name} holds negative class indices; use 0..K-1")
        return out

    # ------------------------------------------------------------------ streaming

    def _level(self) -> float:
        self._spend_index += 1
        t = self._spend_index
        if self.spending == "bonferroni":
            return self.alpha / self.horizon
        return self.alpha * 6.0 / (math.pi**2 * t**2)

    def update(
        self,
        X: Any = None,
        *,
        predictions: Any = None,
        labels: Any = None,
        time: Any = None,
    ) -> tuple[ChangeEvent, ...]:
        """Consume one batch (rows in time order); return the events it raised.

        Parameters
        ----------
        X : array-like of shape (n, d), optional
            The batch's features.
        predictions : array-like of shape (n,) or (n, K), optional
            Predicted classes, or class probabilities.
        labels : array-like of shape (n,), optional
            True classes, when they have arrived; NaN marks rows whose label has not (those
            rows count for the features and predictions, not for the error stream).
        time : optional
            A label for the batch (shown in events).
        """
        self._check_fitted()
        batch = self.n_batches_
        start = self.n_samples_
        t_label = None if time is None else str(time)
        Xb = None if X is None else check_matrix(X, name="X", min_rows=1)
        n = None if Xb is None else Xb.shape[0]
        pred = None if predictions is None else self._classes(predictions, "predictions", n)
        n = n if n is not None else (None if pred is None else pred.shape[0])
        known: npt.NDArray[np.bool_] | None = None
        if labels is not None:
            raw = to_numpy(labels, name="labels")
            if raw.dtype.kind == "f" and raw.ndim == 1 and np.isnan(raw).any():
                known = ~np.isnan(raw)  # labels that have not arrived yet
                if n is not None and raw.shape[0] != n:
                    raise DataValidationError(
                        f"labels has {raw.shape[0]} entries but the batch has {n} rows; pass "
                        "one entry per row (NaN where the label is unknown)"
                    )
                raw = raw[known]
            lab = self._classes(raw, "labels", None if known is not None else n)
        else:
            lab = None
        n_rows = next(
            (a.shape[0] for a in (Xb, pred) if a is not None),
            0 if lab is None else (lab.shape[0] if known is None else known.shape[0]),
        )
        if n_rows == 0:
            raise DataValidationError("update() got an empty batch; pass X, predictions or labels")
        if (
            Xb is not None
            and self.reference_X_ is not None
            and Xb.shape[1] != (self.reference_X_.shape[1])
        ):
            raise DataValidationError(
                f"X has {Xb.shape[1]} features but the reference has "
                f"{self.reference_X_.shape[1]}; pass the same columns"
            )
        new: list[ChangeEvent] = []

        # per-row detectors
        if pred is not None and lab is not None and lab.size:
            errors = ((pred if known is None else pred[known]) != lab).astype(np.int64)
            self._error_rate.append(float(errors.mean()))
            new.extend(self._feed_errors(errors, batch, start, t_label))
        else:
            self._error_rate.append(float("nan"))
        if pred is not None and self.prediction_rates:
            new.extend(self._feed_rates(pred, batch, start, t_label))

        # batch tests, each at its share of the spent level
        tests: list[tuple[str, str, float, float]] = []
        if Xb is not None and self.reference_X_ is not None:
            tests.append(("features", "ks", *self._ks(Xb)))
        if pred is not None and self.reference_predictions_ is not None:
            tests.append(("predictions", "chi2", *_chi2(self.reference_predictions_, pred)))
        if lab is not None and lab.size and self.reference_labels_ is not None:
            tests.append(("labels", "chi2", *_chi2(self.reference_labels_, lab)))
        if tests:
            level = self._level() / len(tests)
            for signal, method, stat, p in tests:
                rejected = bool(p <= level)
                self._tests.append(BatchTest(batch, signal, method, stat, p, level, rejected))
                if rejected and not self._rejecting.get(signal, False):
                    # latched: a shift against the fixed reference persists, report it once
                    new.append(ChangeEvent(batch, start, t_label, signal, method, stat, p, level))
                    self._rejecting[signal] = True

        self._events.extend(new)
        self._record_window(batch, new, Xb, pred, lab, known)
        self._batch_times.append(t_label)
        self._batch_start.append(start)
        self.n_batches_ += 1
        self.n_samples_ += n_rows
        return tuple(new)

    def _feed_errors(
        self, errors: npt.NDArray[np.int64], batch: int, start: int, t_label: str | None
    ) -> list[ChangeEvent]:
        nan = float("nan")
        out: list[ChangeEvent] = []
        for i, e in enumerate(errors.tolist()):
            idx = start + i
            for name, det in self._detectors.items():
                det.update(e)
                if det.drift_detected:
                    out.append(ChangeEvent(batch, idx, t_label, "error_rate", name, nan, nan, nan))
                    self._votes[name] = idx
            recent = {k for k, v in self._votes.items() if idx - v < self.vote_window}
            if len(recent) >= self.min_votes:
                out.append(ChangeEvent(batch, idx, t_label, "error_rate", "vote", nan, nan, nan))
                self._votes.clear()
        return out

    def _feed_rates(
        self, pred: npt.NDArray[np.int64], batch: int, start: int, t_label: str | None
    ) -> list[ChangeEvent]:
        from river import drift

        nan = float("nan")
        out: list[ChangeEvent] = []
        k_max = int(pred.max()) + 1
        if self.reference_predictions_ is not None and self.reference_predictions_.size:
            k_max = max(k_max, int(self.reference_predictions_.max()) + 1)
        for k in range(k_max):
            det = self._rate_detectors.get(k)
            if det is None:
                det = drift.ADWIN()  # type: ignore[no-untyped-call]  # river: unannotated
                self._rate_detectors[k] = det
            fired = False
            for i, v in enumerate((pred == k).astype(np.int64).tolist()):
                det.update(v)
                if det.drift_detected and not fired:
                    fired = True
                    sig = f"prediction_rate[{k}]"
                    out.append(ChangeEvent(batch, start + i, t_label, sig, "adwin", nan, nan, nan))
        return out

    def _record_window(
        self,
        batch: int,
        new: list[ChangeEvent],
        Xb: npt.NDArray[np.floating[Any]] | None,
        pred: npt.NDArray[np.int64] | None,
        lab: npt.NDArray[np.int64] | None,
        known: npt.NDArray[np.bool_] | None,
    ) -> None:
        """Keep the labeled rows of the batches a change groups (for the label-shift check)."""
        last = self._windows[-1] if self._windows else None
        if last is not None and batch - last.start > self.group_window:
            last.close(self._ref_classes)  # its check is final: keep the outcome, not the rows
            last = None
        if last is None and any(self._declares(e) for e in new):
            last = _Window(batch)
            self._windows.append(last)
        if last is None:
            return
        window = last  # the open window this batch belongs to
        window.inputs_watched |= (Xb is not None and self.reference_X_ is not None) or (
            pred is not None and (self.prediction_rates or self.reference_predictions_ is not None)
        )
        if lab is None or not lab.size:
            return
        window.y.append(lab)
        if Xb is not None:
            window.X.append(Xb if known is None else Xb[known])
        if pred is not None:
            window.pred.append(pred if known is None else pred[known])

    def _ks(self, X: npt.NDArray[np.floating[Any]]) -> tuple[float, float]:
        """Per-feature KS against the reference; the smallest p-value, Bonferroni over features."""
        if X.shape[0] < 2 or self._ref_sorted_X is None:
            return float("nan"), 1.0
        cols = np.sort(X, axis=0).T
        res = [_ks_2samp(ref, col) for ref, col in zip(self._ref_sorted_X, cols, strict=True)]
        worst = min(res, key=lambda r: r.pvalue)
        return worst.statistic, min(1.0, worst.pvalue * len(res))

    # ------------------------------------------------------------------ results

    def _check_fitted(self) -> None:
        check_fitted(self, "n_batches_", fit_call="fit(reference_X, predictions=..., labels=...)")

    @property
    def drift_detected(self) -> bool:
        """Whether any change has been declared so far (read-only)."""
        self._check_fitted()
        return bool(self._declared_events())

    def _declares(self, event: ChangeEvent) -> bool:
        """Whether an event declares a change: the error vote, rate ADWINs, rejected batch tests."""
        return event.signal != "error_rate" or event.detector == "vote" or self.min_votes == 1

    def _declared_events(self) -> list[ChangeEvent]:
        """Events that declare a change, in time order."""
        return [e for e in self._events if self._declares(e)]

    def report(self) -> MonitorReport:
        """Summarise the stream so far: declared changes with their kind, every event and test."""
        self._check_fitted()
        declared = self._declared_events()
        windows = {w.start: w for w in self._windows}
        changes: list[ChangePoint] = []
        labels_moved = False
        i = 0
        while i < len(declared):
            first = declared[i]
            group = [e for e in declared[i:] if e.batch - first.batch <= self.group_window]
            i += len(group)
            signals = tuple(dict.fromkeys(_family(e.signal) for e in group))
            labels_moved |= "labels" in signals
            window = windows.get(first.batch)
            check = (
                window.consistency(self._ref_classes)
                if labels_moved and window is not None
                else None
            )
            kind, reason = _kind_of(
                set(signals),
                labels_moved=labels_moved,
                inputs_watched=window is not None and window.inputs_watched,
                check=check,
                alpha=float(self.alpha),
            )
            changes.append(
                ChangePoint(
                    first.batch,
                    first.sample,
                    first.time,
                    kind,
                    signals,
                    reason,
                    float("nan") if check is None else check.pvalue,
                    0 if check is None else check.n_rows,
                )
            )
        return MonitorReport(
            drift_detected=bool(changes),
            kind=changes[0].kind if changes else "none",
            changes=tuple(changes),
            events=tuple(self._events),
            batch_tests=tuple(self._tests),
            error_rate=tuple(self._error_rate),
            n_batches=self.n_batches_,
            n_samples=self.n_samples_,
            alpha=float(self.alpha),
            spending=self.spending,
            horizon=int(self.horizon),
            detectors=tuple(self.detectors),
            min_votes=int(self.min_votes),
        )


def _family(signal: str) -> str:
    return "predictions" if signal.startswith("prediction_rate") else signal


def _kind_of(
    signals: set[str],
    *,
    labels_moved: bool,
    inputs_watched: bool,
    check: _Consistency | None,
    alpha: float,
) -> tuple[SignalKind, str]:
    """Name the kind of a change from its signals and the label-shift check (module notes).

    ``labels_moved``: the labels' test has rejected in this change or before it (it is latched).
    ``check`` is ``None`` when the label-shift check did not run.
    """
    inputs = signals & {"features", "predictions"}
    error = "error_rate" in signals
    if labels_moved and check is not None:
        held = check.pvalue > alpha
        verdict = (
            f"the label-shift check held on {check.n_rows} labeled rows ({check.n_tests} tests "
            f"of P(x | y) and the per-class error rates, Bonferroni p = {check.pvalue:.2g})"
            if held
            else f"the label-shift check failed on {check.n_rows} labeled rows: {check.worst}, "
            f"Bonferroni p = {check.pvalue:.2g} over {check.n_tests} tests"
        )
    else:
        held, verdict = False, ""
    if labels_moved and inputs and check is None:
        return "label", (
            "P(y) moved and the inputs moved; whether P(x | y) held could not be checked "
            "(no labeled rows with features or predictions against a labeled reference)"
        )
    if labels_moved and inputs:
        if held:
            rose = "; the error rate rose with the new class mix" if error else ""
            return "label", f"P(y) moved and the inputs moved with it; {verdict}{rose}"
        if error:
            return "mixed", (
                f"the inputs moved and the error rate rose; {verdict}: the class mix does not "
                "explain it, so P(x | y) moved and P(y | x) may have too"
            )
        return "covariate", (
            f"the inputs moved and P(y) with them, not as a class-mix change ({verdict}); the "
            "error rate held, so P(y | x) did"
        )
    if "labels" in signals:
        if not inputs_watched:
            return "label", (
                "P(y) moved; neither features nor predictions are watched, so label and concept "
                "shift cannot be told apart"
            )
        rose = " and the error rate rose" if error else ""
        return "concept", (
            f"P(y) moved while the inputs and the model's predictions held{rose}: over a fixed "
            "P(x), P(y) moves only if P(y | x) does" + (f"; {verdict}" if verdict else "")
        )
    if labels_moved and error and not inputs and held:
        return (
            "label",
            f"the error rate rose after P(y) had moved, and {verdict}: the new class mix "
            "explains it",
        )
    if inputs and error:
        return "mixed", (
            "the inputs moved and the error rate rose; the rise may come from the new inputs "
            "(covariate) or from changed answers (concept)"
        )
    if inputs:
        return "covariate", "the inputs (or the model's predictions) moved; the labels did not"
    return "concept", "only the error rate rose: the same inputs now get other answers"


def _chi2(ref: npt.NDArray[np.int64], new: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Pearson's χ² test of homogeneity of two class-count vectors (empty classes dropped)."""
    k = int(max(ref.max(initial=0), new.max(initial=0))) + 1
    table = np.vstack([np.bincount(ref, minlength=k), np.bincount(new, minlength=k)])
    table = table[:, table.sum(axis=0) > 0].astype(np.float64)
    if table.shape[1] < 2 or new.size < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return stat, float(stats.chi2.sf(stat, table.shape[1] - 1))


@dataclass(frozen=True, slots=True)
class _ReferenceClass:
    """The reference rows of one class: sorted feature columns and the model's hits."""

    n_rows: int
    sorted_X: npt.NDArray[np.floating[Any]] | None  # (d, n_rows)
    n_correct: int | None


def _reference_by_class(
    X: npt.NDArray[np.floating[Any]] | None,
    pred: npt.NDArray[np.int64] | None,
    labels: npt.NDArray[np.int64] | None,
) -> dict[int, _ReferenceClass]:
    """Per-class reference summaries the label-shift check compares against."""
    if labels is None:
        return {}
    out: dict[int, _ReferenceClass] = {}
    for k in np.unique(labels).tolist():
        rows = labels == k
        out[int(k)] = _ReferenceClass(
            n_rows=int(rows.sum()),
            sorted_X=None if X is None else np.ascontiguousarray(np.sort(X[rows], axis=0).T),
            n_correct=None if pred is None else int((pred[rows] == k).sum()),
        )
    return out


@dataclass(frozen=True, slots=True)
class _Consistency:
    """The label-shift check's outcome: Bonferroni p-value, rows, tests, the worst test."""

    pvalue: float
    n_rows: int
    n_tests: int
    worst: str


class _Window:
    """The labeled rows of the batches one change groups, for its label-shift check."""

    __slots__ = ("X", "_cache", "closed", "inputs_watched", "pred", "start", "y")

    def __init__(self, start: int) -> None:
        self.start = start
        self.inputs_watched = False
        self.closed = False
        self.X: list[npt.NDArray[np.floating[Any]]] = []
        self.pred: list[npt.NDArray[np.int64]] = []
        self.y: list[npt.NDArray[np.int64]] = []
        self._cache: tuple[int, _Consistency | None] | None = None

    def close(self, reference: dict[int, _ReferenceClass]) -> None:
        """Run the check a last time and let go of the rows."""
        if not self.closed:
            self.consistency(reference)
            self.closed = True
            self.X, self.pred, self.y = [], [], []

    def consistency(self, reference: dict[int, _ReferenceClass]) -> _Consistency | None:
        """The label-shift check on the rows so far (cached until a batch adds rows)."""
        if self.closed and self._cache is not None:
            return self._cache[1]
        if self._cache is None or self._cache[0] != len(self.y):
            y = np.concatenate(self.y) if self.y else np.zeros(0, dtype=np.int64)
            X = np.vstack(self.X) if self.X and len(self.X) == len(self.y) else None
            pred = (
                np.concatenate(self.pred) if self.pred and len(self.pred) == len(self.y) else None
            )
            self._cache = (len(self.y), _label_consistency(reference, X, pred, y))
        return self._cache[1]


def _label_consistency(
    reference: dict[int, _ReferenceClass],
    X: npt.NDArray[np.floating[Any]] | None,
    pred: npt.NDArray[np.int64] | None,
    y: npt.NDArray[np.int64],
) -> _Consistency | None:
    """Test what label shift keeps fixed: P(ŷ = y | y = k) and every P(x_j | y = k).

    Under label shift P(x | y) is the reference's, so for each class k seen in both, the model's
    hit rate on class k (Fisher's exact test of the 2x2 table reference/window × right/wrong;
    Lipton et al. 2018) and each feature's law (two-sample KS; Rabanser et al. 2019) match. The
    p-value is the smallest of all, times their number (Bonferroni). ``None`` when no test ran.
    """
    tests: list[tuple[float, str]] = []
    for k in np.unique(y).tolist():
        ref = reference.get(int(k))
        if ref is None:
            continue  # a class the reference never saw: nothing to compare
        rows = y == k
        n = int(rows.sum())
        if pred is not None and ref.n_correct is not None:
            hits = int((pred[rows] == k).sum())
            table = np.array([[ref.n_correct, ref.n_rows - ref.n_correct], [hits, n - hits]])
            p = float(stats.fisher_exact(table).pvalue)
            tests.append(
                (
                    p,
                    f"the model is right on {hits / n:.2f} of class {k} against "
                    f"{ref.n_correct / ref.n_rows:.2f} in the reference (Fisher p = {p:.2g})",
                )
            )
        if X is not None and ref.sorted_X is not None:
            cols = np.sort(X[rows], axis=0).T
            for j, (ref_col, col) in enumerate(zip(ref.sorted_X, cols, strict=True)):
                res = _ks_2samp(ref_col, col)
                tests.append(
                    (
                        res.pvalue,
                        f"P(x{j} | y = {k}) moved (KS D = {res.statistic:.2f}, "
                        f"p = {res.pvalue:.2g})",
                    )
                )
    if not tests:
        return None
    p_min, worst = min(tests, key=lambda t: t[0])
    return _Consistency(min(1.0, p_min * len(tests)), int(y.size), len(tests), worst)
