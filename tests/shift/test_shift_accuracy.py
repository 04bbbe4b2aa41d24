"""estimate_accuracy: each estimator is right under its own assumption and says which it is."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift import (
    AccuracyEstimate,
    AccuracyEstimates,
    ImportanceWeighter,
    LabelShiftEstimator,
    estimate_accuracy,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _calibrated(n: int, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: a perfectly calibrated model."""
    P = _softmax(rng.normal(size=(n, 4)) * scale)
    y = (P.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return P, y


def test_calibrated_model_without_shift_all_estimates_match() -> None:
    rng = np.random.default_rng(0)
    Ps, ys = _calibrated(3000, rng, 2.0)
    Pt, yt = _calibrated(3000, rng, 2.0)
    true = np.mean(Pt.argmax(1) == yt)
    res = estimate_accuracy(Ps, ys, Pt, random_state=0)
    assert isinstance(res, AccuracyEstimates)
    for est in res:
        assert abs(est.accuracy - true) < 0.03, est.method
        assert est.assumption
    assert res["atc"].method == "atc"
    assert "importance-weighted" in res.skipped


def test_calibrated_confidence_follows_a_shift_towards_hard_rows() -> None:
    rng = np.random.default_rng(1)

    def mixture(share_hard: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        n_hard = int(share_hard * n)
        Ph, yh = _calibrated(n_hard, rng, 0.7)
        Pe, ye = _calibrated(n - n_hard, rng, 4.0)
        return np.vstack([Ph, Pe]), np.r_[yh, ye]

    Ps, ys = mixture(0.2, 4000)
    Pt, yt = mixture(0.7, 4000)  # more hard rows, the model stays calibrated
    true = np.mean(Pt.argmax(1) == yt)
    est = estimate_accuracy(Ps, ys, Pt, method="calibrated-confidence")
    assert isinstance(est, AccuracyEstimate)
    assert abs(est.accuracy - true) < 0.03
    assert est.accuracy < est.source_accuracy - 0.1
    assert 0.7 < est.details["temperature"] < 1.4


def test_atc_is_right_when_correctness_follows_confidence() -> None:
    """ATC's assumption in its purest form: rows above a confidence level are right, rows below
    are wrong. A shift in how many rows are confident is then tracked exactly; calibrated
    confidence, whose assumption fails here, is not."""
    rng = np.random.default_rng(4)

    def sample(scale: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        P = _softmax(rng.normal(size=(n, 4)) * rng.exponential(scale, size=(n, 1)))
        top = P.argmax(1)
        y = np.where(P.max(1) > 0.6, top, (top + 1) % 4)
        return P, y

    Ps, ys = sample(3.0, 4000)
    Pt, yt = sample(1.0, 4000)
    true = np.mean(Pt.argmax(1) == yt)
    for score in ("negative-entropy", "max-confidence"):
        est = estimate_accuracy(Ps, ys, Pt, method="atc", score=score)
        assert est.details["score"] == score
        assert abs(est.accuracy - true) < (0.02 if score == "max-confidence" else 0.06)
    conf = estimate_accuracy(Ps, ys, Pt, method="calibrated-confidence")
    assert abs(conf.accuracy - true) > 0.05


def test_label_shift_adjusted_accuracy_under_label_shift() -> None:
    rng = np.random.default_rng(2)

    # class 0 is easy, class 1 is hard: shifting towards class 1 lowers the accuracy
    def sample(prior: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(2, size=n, p=prior)
        x = rng.normal(np.where(y == 0, -2.0, 0.0), np.where(y == 0, 0.5, 1.5))
        l0 = np.exp(-((x + 2.0) ** 2) / (2 * 0.25)) / 0.5
        l1 = np.exp(-(x**2) / (2 * 2.25)) / 1.5
        p1 = l1 / (l0 + l1)
        return np.c_[1 - p1, p1], y

    Ps, ys = sample([0.5, 0.5], 20000)
    Pt, yt = sample([0.05, 0.95], 20000)
    true = np.mean(Pt.argmax(1) == yt)
    est = estimate_accuracy(Ps, ys, Pt, method="label-shift", random_state=0)
    assert abs(est.accuracy - true) < 0.02
    assert abs(est.source_accuracy - true) > 0.05  # the naive estimate is wrong
    fitted = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(Ps, ys)
    res = estimate_accuracy(Ps, ys, Pt, method="label-shift", label_shift=fitted.estimate(Pt))
    assert abs(res.accuracy - true) < 0.03
    assert res.details["label_method"] == "bbse-hard"


def test_importance_weighted_accuracy_under_covariate_shift() -> None:
    rng = np.random.default_rng(3)

    def sample(mean: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = rng.normal(mean, 1.0, size=(n, 1))
        p1 = 1 / (1 + np.exp(-3 * np.sin(2 * x[:, 0])))  # P(y | x) fixed, model = truth
        y = (rng.random(n) < p1).astype(int)
        return x, np.c_[1 - p1, p1], y

    Xs, Ps, ys = sample(0.0, 3000)
    Xt, Pt, yt = sample(1.0, 1500)
    true = np.mean(Pt.argmax(1) == yt)
    w = ImportanceWeighter(random_state=0).fit(Xs, Xt).weights_
    est = estimate_accuracy(Ps, ys, Pt, method="importance-weighted", source_weights=w)
    assert abs(est.accuracy - true) < abs(est.source_accuracy - true)
    assert abs(est.accuracy - true) < 0.03
    assert est.details["effective_sample_size"] < 3000
    auto = estimate_accuracy(
        Ps, ys, Pt, method="importance-weighted", source_X=Xs, target_X=Xt, random_state=0
    )
    assert auto.accuracy == pytest.approx(est.accuracy)


def test_bad_input() -> None:
    rng = np.random.default_rng(0)
    Ps, ys = _calibrated(100, rng, 2.0)
    with pytest.raises(InvalidParameterError, match="source_weights"):
        estimate_accuracy(Ps, ys, Ps, method="importance-weighted")
    with pytest.raises(InvalidParameterError, match="choose one of"):
        estimate_accuracy(Ps, ys, Ps, method="magic")  # type: ignore[call-overload]
    with pytest.raises(DataValidationError, match="3 classes but 4"):
        estimate_accuracy(Ps, ys, Ps[:, :3] / Ps[:, :3].sum(1, keepdims=True))
    with pytest.raises(DataValidationError, match="one weight per"):
        estimate_accuracy(Ps, ys, Ps, method="importance-weighted", source_weights=np.ones(5))
    with pytest.raises(DataValidationError, match="non-negative"):
        estimate_accuracy(Ps, ys, Ps, method="importance-weighted", source_weights=-np.ones(100))
