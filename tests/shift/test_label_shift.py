"""LabelShiftEstimator: quality on digits, exact oracles, the no-shift identity, bad input.

The quality thresholds come from benchmarks/bench_shift_correction.py (100 trials per cell, see
benchmarks/results_shift_correction.md); here 16 trials on one split, with some slack.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndoctor.exceptions import (
    DataValidationError,
    IllConditionedWarning,
    InvalidParameterError,
    NNDoctorError,
)
from nndoctor.shift import LabelShiftEstimator, LabelShiftResult

METHODS = ["em-bcts", "em", "bbse-hard", "bbse-soft", "rlls"]


def _digits(model: Any, seed: int = 1000) -> dict[str, Any]:
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(y.size)
    tr, ho, te = perm[:600], perm[600:1100], perm[1100:]
    scaler = StandardScaler().fit(X[tr])
    model.fit(scaler.transform(X[tr]), y[tr])
    return {
        "Ph": model.predict_proba(scaler.transform(X[ho])),
        "yh": y[ho],
        "Pte": model.predict_proba(scaler.transform(X[te])),
        "yte": y[te],
        "Lh": model.predict_log_proba(scaler.transform(X[ho])),
        "Lte": model.predict_log_proba(scaler.transform(X[te])),
    }


@pytest.fixture(scope="module")
def logistic() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    return _digits(LogisticRegression(max_iter=3000))


@pytest.fixture(scope="module")
def naive_bayes() -> dict[str, Any]:
    from sklearn.naive_bayes import GaussianNB

    return _digits(GaussianNB())


def _trials(
    data: dict[str, Any],
    methods: list[str],
    *,
    alpha: float,
    n: int,
    n_trials: int,
    inputs: str = "probs",
):
    rng = np.random.default_rng(0)
    p = np.bincount(data["yh"], minlength=10) / data["yh"].size
    src, tgt = ("Lh", "Lte") if inputs == "log_probs" else ("Ph", "Pte")
    ests = {
        m: LabelShiftEstimator(m, n_bootstrap=0, inputs=inputs).fit(data[src], data["yh"])  # type: ignore[arg-type]
        for m in methods
    }
    by_class = [np.flatnonzero(data["yte"] == c) for c in range(10)]
    mse: dict[str, list[float]] = {m: [] for m in methods}
    gain: list[float] = []
    for _ in range(n_trials):
        counts = rng.multinomial(n, rng.dirichlet(np.full(10, alpha)))
        idx = np.concatenate([rng.choice(by_class[c], size=k) for c, k in enumerate(counts) if k])
        Pt, yt = data[tgt][idx], data["yte"][idx]
        truth = counts / n / p
        for m, est in ests.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", IllConditionedWarning)
                res = est.estimate(Pt)
            mse[m].append(float(np.mean((res.weights - truth) ** 2)))
            if m == "em-bcts":
                before = np.mean(Pt.argmax(1) == yt)
                gain.append(float(np.mean(est.adjust(Pt).argmax(1) == yt) - before))
    return {m: float(np.median(v)) for m, v in mse.items()}, gain


def test_weight_mse_on_digits_at_alpha_01(logistic: dict[str, Any]) -> None:
    mse, gain = _trials(logistic, METHODS, alpha=0.1, n=1000, n_trials=16)
    assert mse["em-bcts"] <= 0.004  # issue bar 0.003 on the 100-trial median (benchmark)
    assert mse["bbse-hard"] <= 0.010  # issue bar 0.008 on the 100-trial median
    assert max(mse.values()) < 0.05  # every method far below no correction (~3)
    # prior-corrected predictions gain accuracy at alpha = 0.1
    assert np.median(gain) > 0.005
    assert np.mean(np.asarray(gain) >= 0) >= 0.8


def test_calibration_matters_on_a_miscalibrated_model(naive_bayes: dict[str, Any]) -> None:
    mse, _ = _trials(naive_bayes, ["em-bcts", "em"], alpha=0.1, n=1000, n_trials=16)
    assert mse["em-bcts"] <= 0.04
    assert mse["em"] >= 2.5 * mse["em-bcts"]  # EM without calibration is several times worse


def test_gaussian_nb_log_probs_pick_a_finite_floor_and_do_not_hurt(
    naive_bayes: dict[str, Any],
) -> None:
    """GaussianNB's log-probabilities reach -1e10 (near-zero variances): unfloored temperature
    scaling would flatten the model; the floor chosen by held-out NLL keeps it useful."""
    assert naive_bayes["Lh"].min() < -1e6
    est = LabelShiftEstimator(n_bootstrap=0, inputs="log_probs").fit(
        naive_bayes["Lh"], naive_bayes["yh"]
    )
    assert 10.0 < est.logit_floor_ < 1000.0
    by_probs = LabelShiftEstimator(n_bootstrap=0).fit(naive_bayes["Ph"], naive_bayes["yh"])
    assert by_probs.logit_floor_ == est.logit_floor_  # exact zeros are floored like -1e12
    lp, _ = _trials(
        naive_bayes, ["em-bcts", "em"], alpha=0.1, n=1000, n_trials=16, inputs="log_probs"
    )
    pr, _ = _trials(naive_bayes, ["em-bcts"], alpha=0.1, n=1000, n_trials=16)
    assert lp["em-bcts"] <= 1.2 * pr["em-bcts"]
    assert lp["em"] >= 3 * lp["em-bcts"]


@pytest.mark.parametrize("method", ["em-bcts", "em"])
def test_no_shift_gives_exactly_one(logistic: dict[str, Any], method: str) -> None:
    est = LabelShiftEstimator(method, n_bootstrap=0).fit(logistic["Ph"], logistic["yh"])
    if method == "em-bcts":  # EM's fixed point: source prior = mean calibrated posterior
        res = est.estimate(logistic["Ph"])
        np.testing.assert_allclose(res.weights, 1.0, atol=1e-12)
        np.testing.assert_allclose(res.target_prior, res.source_prior, atol=1e-12)
        np.testing.assert_allclose(  # BCTS biases make it equal to the label frequencies
            res.source_prior, np.bincount(logistic["yh"]) / logistic["yh"].size, atol=1e-4
        )
    else:  # uncalibrated EM has no such identity: the mean posterior is not the label frequency
        res = est.estimate(logistic["Ph"])
        assert np.max(np.abs(res.weights - 1)) < 0.3


@pytest.mark.parametrize("method", ["bbse-hard", "bbse-soft"])
def test_bbse_solves_the_joint_confusion_system_exactly(
    logistic: dict[str, Any], method: str
) -> None:
    """Oracle: a target made of the held-out rows of class c repeated r_c times has exactly
    mu = C w with w_c = r_c n / n_target, so BBSE must return w to machine precision."""
    Ph, yh = logistic["Ph"], logistic["yh"]
    reps = np.array([3, 1, 0, 2, 1, 1, 2, 1, 3, 1])
    idx = np.concatenate([np.tile(np.flatnonzero(yh == c), r) for c, r in enumerate(reps)])
    res = LabelShiftEstimator(method, n_bootstrap=0).fit(Ph, yh).estimate(Ph[idx])
    expected = reps * yh.size / idx.size
    np.testing.assert_allclose(res.weights, expected, atol=1e-8)
    assert res.condition_number < 10
    np.testing.assert_allclose(res.weights @ res.source_prior, 1.0)


def test_rlls_matches_bbse_when_well_conditioned_and_shrinks_to_one(
    logistic: dict[str, Any],
) -> None:
    Ph, yh = logistic["Ph"], logistic["yh"]
    idx = np.concatenate([np.flatnonzero(yh == c) for c in (0, 0, 1, 2, 3)])
    bbse = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(Ph, yh).estimate(Ph[idx])
    rlls = LabelShiftEstimator("rlls", n_bootstrap=0).fit(Ph, yh).estimate(Ph[idx])
    assert np.max(np.abs(rlls.weights - bbse.weights)) < 0.5
    strong = LabelShiftEstimator("rlls", n_bootstrap=0, rlls_coefficient=100.0).fit(Ph, yh)
    assert np.max(np.abs(strong.estimate(Ph[idx]).weights - 1)) < 1e-3


def test_bootstrap_interval_and_reproducibility(logistic: dict[str, Any]) -> None:
    Ph, yh, Pte, yte = logistic["Ph"], logistic["yh"], logistic["Pte"], logistic["yte"]
    rng = np.random.default_rng(1)
    counts = np.array([150, 120, 100, 80, 60, 50, 40, 30, 20, 10])
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(yte == c), size=k) for c, k in enumerate(counts)]
    )
    est = LabelShiftEstimator(n_bootstrap=20, random_state=0).fit(Ph, yh)
    a = est.estimate(Pte[idx])
    b = LabelShiftEstimator(n_bootstrap=20, random_state=0).fit(Ph, yh).estimate(Pte[idx])
    np.testing.assert_array_equal(a.ci_low, b.ci_low)
    assert np.all(a.ci_low <= a.weights + 1e-9)
    assert np.all(a.weights <= a.ci_high + 1e-9)
    truth = counts / idx.size / (np.bincount(yh) / yh.size)
    assert np.mean((a.ci_low <= truth) & (truth <= a.ci_high)) >= 0.7
    assert np.all(a.prior_ci_low <= a.prior_ci_high)
    assert isinstance(a, LabelShiftResult)
    assert a.n_classes == 10
    d = a.to_dict()
    assert d["method"] == "em-bcts"
    assert len(d["weights"]) == 10


def test_adjust_reweights_and_renormalizes(logistic: dict[str, Any]) -> None:
    Ph, yh = logistic["Ph"], logistic["yh"]
    est = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(Ph, yh)
    res = est.estimate(Ph[yh == 3])
    adj = est.adjust(Ph)
    np.testing.assert_allclose(adj.sum(axis=1), 1.0)
    manual = Ph * res.weights
    np.testing.assert_allclose(adj, manual / manual.sum(axis=1, keepdims=True))


def test_singular_confusion_matrix_falls_back_with_a_warning() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    P = np.full((150, 3), 0.05)
    P[np.arange(150), np.where(y == 2, 0, y)] = 0.9  # class 2 is never predicted
    est = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(P, y)
    with pytest.warns(IllConditionedWarning, match="singular"):
        res = est.estimate(P[rng.permutation(150)[:100]])
    assert np.all(np.isfinite(res.weights))
    assert np.isinf(res.condition_number)
    P2 = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    est2 = LabelShiftEstimator("bbse-soft", n_bootstrap=0, max_condition=1.0).fit(P2, [0, 1, 0, 1])
    with pytest.warns(IllConditionedWarning, match="ill-conditioned"):
        est2.estimate(np.tile(P2, (3, 1)))  # 12 rows: enough not to be flagged as too few


def test_bad_input_is_a_typed_error() -> None:
    P = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([0, 1, 0, 1])
    with pytest.raises(DataValidationError, match="sum to 1"):
        LabelShiftEstimator().fit(P * 0.9, y)
    with pytest.raises(DataValidationError, match="NaN"):
        LabelShiftEstimator().fit(np.where(P == 0.7, np.nan, P), y)
    with pytest.raises(DataValidationError, match="never occur"):
        LabelShiftEstimator().fit(np.c_[P * 0.5, P * 0.5], np.array([0, 1, 0, 1]))
    with pytest.raises(DataValidationError, match="range"):
        LabelShiftEstimator().fit(P, [0, 1, 2, 1])
    with pytest.raises(DataValidationError, match="dtype"):
        LabelShiftEstimator().fit(P, np.array(["a", "b", "a", "b"]))
    with pytest.raises(DataValidationError, match="entries"):
        LabelShiftEstimator().fit(P, [0, 1, 0])
    with pytest.raises(InvalidParameterError, match="choose one of"):
        LabelShiftEstimator("bbse").fit(P, y)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="n_bootstrap"):
        LabelShiftEstimator(n_bootstrap=-1).fit(P, y)
    with pytest.raises(NNDoctorError, match="not fitted"):
        LabelShiftEstimator().estimate(P)
    est = LabelShiftEstimator(n_bootstrap=0).fit(P, y)
    with pytest.raises(DataValidationError, match="3 classes but 2"):
        est.estimate(np.full((4, 3), 1 / 3))
    with pytest.raises(NNDoctorError, match="estimate"):
        est.adjust(P)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(2, 5),
    n=st.integers(20, 60),
    seed=st.integers(0, 2**16),
    method=st.sampled_from(METHODS),
    inputs=st.sampled_from(["probs", "log_probs", "logits"]),
)
def test_any_valid_input_gives_valid_weights(
    k: int, n: int, seed: int, method: str, inputs: str
) -> None:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(k) * 0.5, size=n)
    y = np.r_[np.arange(k), rng.integers(0, k, size=n - k)]
    T = rng.dirichlet(np.ones(k) * 0.5, size=n)
    if inputs != "probs":  # log-probabilities; logits: any row offset and a wide scale
        P, T = np.log(np.maximum(P, 1e-300)), np.log(np.maximum(T, 1e-300))
        if inputs == "logits":
            P, T = 40.0 * P + rng.normal(0, 9, (n, 1)), 40.0 * T + rng.normal(0, 9, (n, 1))
    est = LabelShiftEstimator(method, n_bootstrap=0, inputs=inputs)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        res = est.fit(P, y).estimate(T)
    assert np.all(np.isfinite(res.weights))
    assert np.all(res.weights >= 0)
    assert res.weights @ res.source_prior == pytest.approx(1.0)
    assert res.target_prior.sum() == pytest.approx(1.0)


# ------------------------------------------------ inputs="log_probs" or "logits"
@pytest.mark.parametrize("method", METHODS)
def test_log_probs_and_logits_match_probabilities(logistic: dict[str, Any], method: str) -> None:
    """Same model, three input forms: log(P) and log(P) + any row constant are the same model."""
    Ph, yh, Pte = logistic["Ph"], logistic["yh"], logistic["Pte"][:300]
    Lh, Lte = np.log(np.maximum(Ph, 1e-12)), np.log(np.maximum(Pte, 1e-12))
    Lh, Lte = (
        Lh - np.log(np.exp(Lh).sum(1, keepdims=True)),
        Lte - np.log(np.exp(Lte).sum(1))[:, None],
    )
    shift = np.random.default_rng(0).normal(0, 50, size=(Lte.shape[0], 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        ref = LabelShiftEstimator(method, n_bootstrap=0).fit(Ph, yh).estimate(Pte)  # type: ignore[arg-type]
        lp = LabelShiftEstimator(method, n_bootstrap=0, inputs="log_probs").fit(Lh, yh)  # type: ignore[arg-type]
        lg = LabelShiftEstimator(method, n_bootstrap=0, inputs="logits").fit(Lh + 3.0, yh)  # type: ignore[arg-type]
        np.testing.assert_allclose(lp.estimate(Lte).weights, ref.weights, atol=1e-5)
        np.testing.assert_allclose(lg.estimate(Lte + shift).weights, ref.weights, atol=1e-5)
    np.testing.assert_allclose(lg.adjust(Lte + shift), lp.adjust(Lte), atol=1e-8)


def _saturated(prior: list[float], n: int, rng: np.random.Generator) -> tuple[Any, Any, Any]:
    """Two Gaussian classes; the model's logits are the true ones times 1000 (overconfident),
    so its float64 probabilities are exactly 0 or 1 for most rows."""
    y = rng.choice(2, size=n, p=prior)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    true_post = 1.0 / (1.0 + np.exp(-2.0 * x))  # P(y = 1 | x) under equal priors
    return 1000.0 * np.c_[-x, x], y, true_post


def test_log_probs_keep_what_saturated_probabilities_lose() -> None:
    rng = np.random.default_rng(0)
    zs, ys, _ = _saturated([0.5, 0.5], 2000, rng)
    zt, yt, post_t = _saturated([0.9, 0.1], 2000, rng)
    lp, lpt = (z - np.logaddexp(z[:, :1], z[:, 1:]) for z in (zs, zt))
    assert np.mean(np.exp(lp) == 0.0) > 0.4  # saturated in float64
    truth = np.bincount(yt, minlength=2) / yt.size
    est = LabelShiftEstimator(n_bootstrap=0, inputs="logits").fit(zs, ys)
    assert est.temperature_ == pytest.approx(1000.0, rel=0.2)
    assert np.max(np.abs(est.estimate(zt).target_prior - truth)) < 0.03
    est_lp = LabelShiftEstimator(n_bootstrap=0, inputs="log_probs").fit(lp, ys)
    np.testing.assert_allclose(est_lp.estimate(lpt).weights, est.result_.weights, atol=1e-6)
    # calibrated posteriors: from logits close to the truth; from saturated probabilities not
    err_logits = np.median(np.abs(est.calibrate(zt)[:, 1] - post_t))
    est_p = LabelShiftEstimator(n_bootstrap=0).fit(np.exp(lp), ys)
    err_probs = np.median(np.abs(est_p.calibrate(np.exp(lpt))[:, 1] - post_t))
    assert err_logits < 0.02
    assert err_probs > 3 * err_logits


def test_probabilities_keep_what_is_left_above_underflow() -> None:
    """Probabilities of 1e-100 are not 0: inputs="probs" takes their logs (floored only at
    1e-300) and chooses the logit floor like the log-scale inputs, so a model scaled x50
    (probabilities down to ~1e-150, none exactly 0) is calibrated as well as from its logits.
    The first release floored probabilities at 1e-12 before taking logs, which cut every such
    entry to the same value; on the digits benchmark GaussianNB(var_smoothing=0.1) had weight
    MSE 0.0087 with probabilities vs 0.0058 with log-probabilities (now both 0.0058)."""
    rng = np.random.default_rng(1)

    def draw(prior: list[float], n: int) -> tuple[Any, Any, Any]:
        y = rng.choice(2, size=n, p=prior)
        x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
        z = 50.0 * np.c_[-x, x]
        return z - np.logaddexp(z[:, :1], z[:, 1:]), y, 1.0 / (1.0 + np.exp(-2.0 * x))

    lp, ys, _ = draw([0.5, 0.5], 2000)
    lpt, _, post_t = draw([0.8, 0.2], 2000)
    assert np.mean(np.exp(lp) < 1e-12) > 0.3
    assert np.all(np.exp(lp) > 0)
    by_logs = LabelShiftEstimator(n_bootstrap=0, inputs="log_probs").fit(lp, ys)
    by_probs = LabelShiftEstimator(n_bootstrap=0).fit(np.exp(lp), ys)
    assert by_probs.logit_floor_ == by_logs.logit_floor_
    assert by_probs.temperature_ == pytest.approx(50.0, rel=0.2)
    np.testing.assert_allclose(
        by_probs.estimate(np.exp(lpt)).weights, by_logs.estimate(lpt).weights, atol=1e-6
    )
    assert np.median(np.abs(by_probs.calibrate(np.exp(lpt))[:, 1] - post_t)) < 0.02


def test_bad_log_probs_and_logits_are_typed_errors() -> None:
    L = np.log(np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]))
    y = np.array([0, 1, 0, 1])
    with pytest.raises(InvalidParameterError, match="inputs"):
        LabelShiftEstimator(inputs="log").fit(L, y)  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="logsumexp"):
        LabelShiftEstimator(inputs="log_probs").fit(L + 1.0, y)
    with pytest.raises(DataValidationError, match="logsumexp"):  # probabilities passed by mistake
        LabelShiftEstimator(inputs="log_probs").fit(np.exp(L), y)
    for bad in (-np.inf, np.nan, np.inf):
        with pytest.raises(DataValidationError, match="predict_log_proba"):
            LabelShiftEstimator(inputs="log_probs").fit(np.where(L[0, 0] == L, bad, L), y)
    with pytest.raises(DataValidationError, match="at least 2"):
        LabelShiftEstimator(inputs="logits").fit(L[:, :1], y)
    est = LabelShiftEstimator(n_bootstrap=0, inputs="logits").fit(L, y)
    with pytest.raises(DataValidationError, match="3 classes but 2"):
        est.estimate(np.zeros((4, 3)))
    with pytest.raises(DataValidationError, match="3 classes but 2"):
        est.calibrate(np.zeros((4, 3)))
    assert repr(est) == "LabelShiftEstimator(method='em-bcts', inputs='logits')"
    np.testing.assert_allclose(est.calibrate(L + 7.0).sum(axis=1), 1.0)


def test_estimate_accuracy_refuses_a_log_probs_estimator_but_takes_its_result() -> None:
    from nndoctor.shift import estimate_accuracy

    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), size=60)
    y = np.r_[np.arange(3), rng.integers(0, 3, size=57)]
    est = LabelShiftEstimator(n_bootstrap=0, inputs="log_probs").fit(np.log(P), y)
    with pytest.raises(InvalidParameterError, match="inputs='log_probs'"):
        estimate_accuracy(P, y, P, method="label-shift", label_shift=est)
    res = est.estimate(np.log(P))
    out = estimate_accuracy(P, y, P, method="label-shift", label_shift=res)
    assert 0.0 <= out.accuracy <= 1.0


def test_bootstrap_replicates_over_the_maximum_are_refused() -> None:
    """``--n-bootstrap 10000000`` ran for hours, holding every replicate; now a typed error
    names the limit and the reason (likewise ``diagnose(weight_intervals=...)``)."""
    from nndoctor.shift import diagnose
    from nndoctor.shift.label import MAX_BOOTSTRAP

    P = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    with pytest.raises(InvalidParameterError, match="maximum of 100,000"):
        LabelShiftEstimator(n_bootstrap=MAX_BOOTSTRAP + 1).fit(P, [0, 1, 0, 1])
    with pytest.raises(InvalidParameterError, match=r"weight_intervals .* maximum"):
        diagnose(np.zeros((50, 2)), np.arange(50) % 2, np.zeros((20, 2)),
                 weight_intervals=MAX_BOOTSTRAP + 1)  # fmt: skip
