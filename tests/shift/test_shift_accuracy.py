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


# --- the model's own predictions, and the confidence-based estimator (CBPE) ------------------


def _rounded_model(n: int, rng: np.random.Generator, mean: float = 0.0) -> tuple[np.ndarray, ...]:
    """A binary model whose class-1 probabilities are rounded to 0.01, about 14 % of them to
    exactly 0 or 1, and too confident (the truth is a flatter logistic): temperature scaling
    cannot fit it, and its decision threshold is 0.65."""
    x = rng.normal(mean, 1.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * x + 1.5)))).astype(int)
    p = np.round(1 / (1 + np.exp(-(3.0 * x + 2.0))), 2)
    return p, y


def test_confidence_based_calibrates_rounded_saturated_probabilities() -> None:
    rng = np.random.default_rng(0)
    p, y = _rounded_model(20000, rng)
    assert 0.10 < np.mean((p == 0) | (p == 1)) < 0.18
    true = np.mean((p >= 0.65) == y)
    est = estimate_accuracy(p, y, p, method="confidence-based", threshold=0.65, random_state=0)
    assert abs(est.accuracy - true) < 0.005  # on the reference itself
    assert est.source_accuracy == pytest.approx(true)
    assert est.details["calibration"] == "isotonic"
    # temperature scaling is more than twice as far off on the same rows
    conf = estimate_accuracy(p, y, p, method="calibrated-confidence", threshold=0.65)
    assert abs(conf.accuracy - true) > 0.01
    # and on a shifted target, the estimate follows the realized accuracy
    pt, yt = _rounded_model(5000, rng, mean=-0.7)
    true_t = np.mean((pt >= 0.65) == yt)
    est_t = estimate_accuracy(p, y, pt, method="confidence-based", threshold=0.65, random_state=0)
    assert abs(est_t.accuracy - true_t) < 0.015
    assert est_t.ci_low <= true_t <= est_t.ci_high
    assert abs(est_t.source_accuracy - true_t) > 0.03  # the shift moved the accuracy


def test_threshold_and_given_predictions_are_what_is_scored() -> None:
    rng = np.random.default_rng(1)
    p, y = _rounded_model(8000, rng)
    pt, yt = _rounded_model(4000, rng, mean=0.5)
    pred_s, pred_t = (p >= 0.8).astype(int), (pt >= 0.8).astype(int)
    true = np.mean(pred_t == yt)
    argmax_true = np.mean((pt > 0.5) == yt)
    assert abs(true - argmax_true) > 0.01  # the threshold matters here
    by_threshold = estimate_accuracy(
        p, y, pt, method="confidence-based", threshold=0.8, random_state=0
    )
    given = estimate_accuracy(
        np.c_[1 - p, p], y, np.c_[1 - pt, pt], method="confidence-based",
        source_pred=pred_s, target_pred=pred_t, random_state=0,
    )  # fmt: skip
    argmax = estimate_accuracy(p, y, pt, method="confidence-based", random_state=0)
    assert by_threshold.predictions == "threshold 0.8"
    assert given.predictions == "given"
    assert by_threshold.accuracy == pytest.approx(given.accuracy)
    assert abs(by_threshold.accuracy - true) < 0.015
    assert abs(argmax.accuracy - argmax_true) < 0.015
    assert by_threshold.source_accuracy == pytest.approx(np.mean(pred_s == y))
    # every estimator scores the given predictions
    for m in ("atc", "calibrated-confidence", "label-shift"):
        e = estimate_accuracy(p, y, pt, method=m, threshold=0.8, random_state=0)
        assert e.source_accuracy == pytest.approx(np.mean(pred_s == y)), m


def test_binary_metrics_follow_a_covariate_shift() -> None:
    """A calibrated binary model, target moved in x: every metric near its realized value."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    rng = np.random.default_rng(2)

    def sample(mean: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(mean, 1.0, n)
        p = 1 / (1 + np.exp(-2.0 * x))
        return p, (rng.random(n) < p).astype(int)

    p, y = sample(0.0, 10000)
    pt, yt = sample(0.8, 5000)
    pred = (pt >= 0.3).astype(int)
    est = estimate_accuracy(p, y, pt, method="confidence-based", threshold=0.3, random_state=0)
    truth = {
        "accuracy": np.mean(pred == yt),
        "precision": precision_score(yt, pred),
        "recall": recall_score(yt, pred),
        "f1": f1_score(yt, pred),
        "roc_auc": roc_auc_score(yt, pt),
    }
    assert set(est.metrics) == set(truth)
    for name, value in truth.items():
        m = est.metrics[name]
        assert abs(m.value - value) < 0.02, name
        assert m.ci_low < m.value < m.ci_high, name
    assert est.metrics["recall"].source_value == pytest.approx(
        recall_score(y, (p >= 0.3).astype(int))
    )


def test_expected_auc_is_the_auc_when_the_labels_are_certain() -> None:
    from sklearn.metrics import roc_auc_score

    from nndoctor.shift.performance import _expected_auc

    rng = np.random.default_rng(3)
    score = np.round(rng.random(500), 1)  # many ties
    y = (rng.random(500) < score).astype(float)
    assert _expected_auc(score, y) == pytest.approx(roc_auc_score(y, score))


def test_confidence_based_intervals_cover_at_the_nominal_rate() -> None:
    """Over 60 seeds of a calibrated problem whose target moved, the 95 % intervals hold the
    realized metric about 95 % of the time (binomial sd at 60 trials: 0.028). The reference
    (1,000 rows) is smaller than the target (2,000), so the calibration's own error matters:
    intervals from the target's Bernoulli noise alone held only 60-67 % here."""
    hits = {"accuracy": 0, "f1": 0, "roc_auc": 0}
    n_seeds = 60
    for seed in range(n_seeds):
        rng = np.random.default_rng(100 + seed)
        x = rng.normal(0.0, 1.0, 1000)
        p = np.round(1 / (1 + np.exp(-2.0 * x)), 2)
        y = (rng.random(1000) < p).astype(int)
        xt = rng.normal(0.5, 1.0, 2000)
        pt = np.round(1 / (1 + np.exp(-2.0 * xt)), 2)
        yt = (rng.random(2000) < pt).astype(int)
        est = estimate_accuracy(
            p, y, pt, method="confidence-based", threshold=0.65, n_bootstrap=200,
            random_state=seed,
        )  # fmt: skip
        pred = pt >= 0.65
        tp, fp, fn = np.sum(pred & (yt == 1)), np.sum(pred & (yt == 0)), np.sum(~pred & (yt == 1))
        from sklearn.metrics import roc_auc_score

        truth = {
            "accuracy": np.mean(pred == yt),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "roc_auc": roc_auc_score(yt, pt),
        }
        for name in hits:
            hits[name] += est.metrics[name].ci_low <= truth[name] <= est.metrics[name].ci_high
    for name, h in hits.items():
        assert 0.85 <= h / n_seeds <= 0.995, (name, h)


def test_multiclass_confidence_based_with_given_predictions() -> None:
    rng = np.random.default_rng(5)
    Ps, ys = _calibrated(4000, rng, 2.0)
    Pt, yt = _calibrated(3000, rng, 1.0)
    pred_s = np.where(Ps.max(1) > 0.5, Ps.argmax(1), 0)  # "abstain to class 0" when unsure
    pred_t = np.where(Pt.max(1) > 0.5, Pt.argmax(1), 0)
    est = estimate_accuracy(
        Ps, ys, Pt, method="confidence-based", source_pred=pred_s, target_pred=pred_t,
        random_state=0,
    )  # fmt: skip
    true = np.mean(pred_t == yt)
    assert abs(est.accuracy - true) < 0.02
    assert est.ci_low <= true <= est.ci_high
    assert set(est.metrics) == {"accuracy"}
    assert est.details["calibrated_event"] == "prediction correct"
    assert est.to_dict()["metrics"]["accuracy"]["value"] == pytest.approx(est.accuracy)


def test_bad_predictions() -> None:
    rng = np.random.default_rng(0)
    Ps, ys = _calibrated(100, rng, 2.0)
    p2 = np.c_[1 - Ps[:, 0], Ps[:, 0]]
    y2 = (ys > 1).astype(int)
    with pytest.raises(InvalidParameterError, match="binary"):
        estimate_accuracy(Ps, ys, Ps, method="confidence-based", threshold=0.6)
    with pytest.raises(InvalidParameterError, match="both source_pred and target_pred"):
        estimate_accuracy(p2, y2, p2, method="confidence-based", source_pred=y2)
    with pytest.raises(InvalidParameterError, match="either threshold"):
        estimate_accuracy(p2, y2, p2, threshold=0.6, source_pred=y2, target_pred=y2)
    with pytest.raises(DataValidationError, match="target_pred range"):
        estimate_accuracy(p2, y2, p2, source_pred=y2, target_pred=y2 + 1)
    with pytest.raises(DataValidationError, match="outside"):
        estimate_accuracy(p2[:, 1] + 1, y2, p2[:, 1])
