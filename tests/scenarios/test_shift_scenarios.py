"""The shift scenarios' claimed truth, checked statistically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from nndoctor.exceptions import InvalidParameterError
from nndoctor.scenarios import (
    SHIFT_SCENARIOS,
    ScenarioData,
    cartoon_digits,
    drifting_stream,
    flu_season,
    soda_regions,
)


def _domain(Xs: np.ndarray, Xt: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-fitted domain classifier: its AUC and the importance weights of the source rows.

    w(x) = p(target | x) / p(source | x) * n_source / n_target estimates p_T(x) / p_S(x).
    """
    X = np.vstack([Xs, Xt])
    d = np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    p = cross_val_predict(LogisticRegression(max_iter=1000), X, d, cv=3, method="predict_proba")[
        :, 1
    ]
    w = (p / (1 - p))[: len(Xs)] * len(Xs) / len(Xt)
    return float(roc_auc_score(d, p)), w


def _em_prior(probs: np.ndarray, source_prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EM estimate of the target prior and the adjusted posteriors (Saerens et al., 2002)."""
    prior = source_prior.copy()
    for _ in range(200):
        adjusted = probs * prior / source_prior
        adjusted /= adjusted.sum(1, keepdims=True)
        prior = adjusted.mean(0)
    return prior, adjusted


def _ess_fraction(w: np.ndarray) -> float:
    """Kish's effective sample size, as a fraction of the sample: (sum w)^2 / (n sum w^2)."""
    return float(w.sum() ** 2 / (len(w) * (w**2).sum()))


# ---------------------------------------------------------------------------------- common


@pytest.mark.parametrize("name", sorted(SHIFT_SCENARIOS))
def test_seeded_and_well_formed(name: str) -> None:
    make = SHIFT_SCENARIOS[name]
    a, b, c = make(random_state=3), make(random_state=3), make(random_state=4)
    assert isinstance(a, ScenarioData)
    pd.testing.assert_frame_equal(a.source, b.source)
    pd.testing.assert_frame_equal(a.target, b.target)
    assert not a.target.equals(c.target)
    assert a.kind in {"covariate", "label", "concept"}
    for frame in (a.source, a.target):
        assert a.label in frame.columns
        assert set(a.features) <= set(frame.columns)
        assert set(frame[a.label]) <= set(a.classes)
        assert np.isfinite(frame[list(a.features)].to_numpy(dtype=float)).all()
    Xs, ys, Xt, yt = a.arrays()
    assert Xs.shape == (len(a.source), len(a.features))
    assert Xt.shape[0] == yt.shape[0] == len(a.target)
    assert ys.dtype == np.int64
    assert ys.min() >= 0
    assert ys.max() < len(a.classes)
    summary = a.to_dict()
    assert summary["kind"] == a.kind
    assert summary["n_target"] == len(a.target)
    text = a.describe()
    assert f"**{a.kind}**" in text
    assert a.label in text
    with pytest.raises(AttributeError):
        a.kind = "label"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.truth["new"] = 1  # type: ignore[index]


# ----------------------------------------------------------------------------- flu season


def test_flu_season_is_label_shift() -> None:
    data = flu_season(n_source=3000, n_target=3000, random_state=0)
    # P(x | y) is the same in both seasons: per class and per symptom, two-sample tests do not
    # reject (Bonferroni over 15 tests at a family-wise level of 1%).
    pvalues = []
    for c in data.classes:
        s = data.source[data.source.diagnosis == c]
        t = data.target[data.target.diagnosis == c]
        for f in data.features:
            if s[f].nunique() <= 2:  # binary symptoms: Fisher's exact test on the 2x2 table
                table = [[int(s[f].sum()), int((1 - s[f]).sum())],
                         [int(t[f].sum()), int((1 - t[f]).sum())]]  # fmt: skip
                pvalues.append(stats.fisher_exact(table).pvalue)
            else:
                pvalues.append(stats.ks_2samp(s[f], t[f]).pvalue)
    assert min(pvalues) > 0.01 / len(pvalues), pvalues
    # ... while the marginal P(x) moves a lot (flu brings fever)
    assert stats.ks_2samp(data.source.temperature_c, data.target.temperature_c).pvalue < 1e-10
    # the priors are as stated (within 4 binomial standard errors) and differ between seasons
    for frame, prior in ((data.source, "source_prior"), (data.target, "target_prior")):
        observed = frame.diagnosis.value_counts(normalize=True)
        for c in data.classes:
            p = data.truth[prior][c]
            assert abs(observed[c] - p) < 4 * np.sqrt(p * (1 - p) / len(frame))
    counts = pd.crosstab(
        np.r_[np.zeros(len(data.source)), np.ones(len(data.target))],
        np.r_[data.source.diagnosis, data.target.diagnosis],
    )
    assert stats.chi2_contingency(counts).pvalue < 1e-10
    w = data.truth["weights"]
    assert w["flu"] == pytest.approx(7.0)
    assert w["healthy"] == pytest.approx(0.45 / 0.8)


def test_flu_season_custom_priors_and_errors() -> None:
    data = flu_season(
        n_source=50, n_target=50, source_prior=[0.5, 0.25, 0.25], target_prior=[0.2, 0.2, 0.6]
    )
    assert data.truth["weights"]["flu"] == pytest.approx(2.4)
    with pytest.raises(InvalidParameterError, match="summing to 1"):
        flu_season(source_prior=[0.5, 0.5, 0.5])
    with pytest.raises(InvalidParameterError, match="3 probabilities"):
        flu_season(target_prior=[0.5, 0.5])
    with pytest.raises(InvalidParameterError, match="one probability for each"):
        flu_season(target_prior={"flu": 1.0})
    with pytest.raises(InvalidParameterError, match="n_source"):
        flu_season(n_source=1)


# --------------------------------------------------------------------------- soda regions


def test_soda_regions_is_concept_shift() -> None:
    data = soda_regions(n_source=2000, n_target=2000, random_state=0)
    Xs, ys, Xt, yt = data.arrays()
    # same P(x): no feature's distribution differs and a domain classifier is at chance
    ks = [stats.ks_2samp(Xs[:, j], Xt[:, j]).pvalue for j in range(Xs.shape[1])]
    assert min(ks) > 0.01 / len(ks)
    auc, w = _domain(Xs, Xt)
    assert abs(auc - 0.5) < 0.05
    assert _ess_fraction(w) > 0.9  # importance weights are all about 1
    # different P(y | x): a source model is right in the source and wrong in the target on
    # about the relabelled fraction of drinks
    model = LogisticRegression(max_iter=2000).fit((Xs - Xs.mean(0)) / Xs.std(0), ys)
    acc_s = model.score((Xs - Xs.mean(0)) / Xs.std(0), ys)
    acc_t = model.score((Xt - Xs.mean(0)) / Xs.std(0), yt)
    assert acc_s > 0.9
    assert acc_s - acc_t == pytest.approx(data.truth["relabelled_fraction"], abs=0.06)
    # a label-shift correction cannot repair it: EM misjudges the target prior and the adjusted
    # predictions are no better
    probs = model.predict_proba((Xt - Xs.mean(0)) / Xs.std(0))
    prior, adjusted = _em_prior(probs, np.bincount(ys, minlength=3) / len(ys))
    coke = data.classes.index("coke")
    assert abs(prior[coke] - np.mean(yt == coke)) > 0.3
    assert (adjusted.argmax(1) == yt).mean() < acc_s - 0.3
    # the relabelled drinks: sweet but not a cola; 'pop' in the Midwest, 'coke' in the South
    sweet_other = (data.target.sugar_g >= 4) & (data.target.caffeine_mg < 40)
    assert (data.target.name[sweet_other] == "coke").mean() > 0.95
    sweet_other_s = (data.source.sugar_g >= 4) & (data.source.caffeine_mg < 40)
    assert (data.source.name[sweet_other_s] == "pop").mean() > 0.95


def test_soda_regions_choices() -> None:
    data = soda_regions(n_source=300, n_target=300, source_region="northeast", label_noise=0.0)
    assert set(data.source.name) <= {"soda", "coke"}
    with pytest.raises(InvalidParameterError, match="two different regions"):
        soda_regions(source_region="south", target_region="south")
    with pytest.raises(InvalidParameterError, match="choose one of"):
        soda_regions(target_region="texas")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="label_noise"):
        soda_regions(label_noise=1.0)


# ------------------------------------------------------------------------- cartoon digits


def test_cartoon_digits_is_covariate_shift_with_little_overlap() -> None:
    data = cartoon_digits(random_state=0)
    Xs, ys, Xt, yt = data.arrays()
    # a domain classifier separates photos from cartoons almost perfectly, so the importance
    # weights pile onto a handful of photos and their effective sample size collapses
    auc, w = _domain(Xs, Xt)
    assert auc > 0.95
    assert _ess_fraction(w) < 0.1
    assert np.sort(w)[-10:].sum() / w.sum() > 0.3
    # the prior is the same in both tables
    counts = np.vstack([np.bincount(ys, minlength=10), np.bincount(yt, minlength=10)])
    assert stats.chi2_contingency(counts).pvalue > 0.01
    # the task is the same task: cartoons are learnable from labeled cartoons, but a photo model
    # that reads photos well reads cartoons badly
    half = len(Xt) // 2
    cartoon_model = RidgeClassifier(alpha=1.0).fit(Xt[:half] / 16, yt[:half])
    photo_model = RidgeClassifier(alpha=1.0).fit(Xs[: len(Xs) // 2] / 16, ys[: len(Xs) // 2])
    acc_cartoon = cartoon_model.score(Xt[half:] / 16, yt[half:])
    acc_photo_on_photos = photo_model.score(Xs[len(Xs) // 2 :] / 16, ys[len(Xs) // 2 :])
    acc_photo_on_cartoons = photo_model.score(Xt[half:] / 16, yt[half:])
    assert acc_cartoon > 0.8
    assert acc_photo_on_photos > 0.85
    assert acc_photo_on_cartoons < acc_cartoon - 0.2
    assert set(np.unique(Xt)) <= {0.0, 8.0, 16.0}


def test_cartoon_digits_sizes() -> None:
    data = cartoon_digits(n_source=100, n_target=50, levels=5)
    assert (len(data.source), len(data.target)) == (100, 50)
    assert set(np.unique(data.target[list(data.features)])) <= {0.0, 4.0, 8.0, 12.0, 16.0}
    with pytest.raises(InvalidParameterError, match="at most 1797"):
        cartoon_digits(n_source=1000, n_target=1000)


# ------------------------------------------------------------------------ drifting stream


def test_drifting_stream_rule_turns_over_time() -> None:
    data = drifting_stream(n_source=1000, n_stream=4000, rotation_deg=90, random_state=0)
    t0, t1 = data.truth["drift_start_t"], data.truth["drift_end_t"]
    assert (t0, t1) == (2000, 4000)
    stream = data.target
    assert stream.t.is_monotonic_increasing
    assert stream.t.iloc[0] == 1000
    early = stream[stream.t < t0]
    late = stream[stream.t >= t1]
    # P(x) does not move
    for f in data.features:
        assert stats.ks_2samp(early[f], late[f]).pvalue > 0.001
    # the boundary's direction, estimated in each window, has turned by the stated angle

    def angle(frame: pd.DataFrame) -> float:
        m = LogisticRegression().fit(frame[["x1", "x2"]], frame.y)
        return float(np.degrees(np.arctan2(m.coef_[0, 1], m.coef_[0, 0])))

    assert angle(data.source) == pytest.approx(0.0, abs=8)
    assert angle(late) == pytest.approx(90.0, abs=8)
    # a source model's error rises from the noise level to the stated level
    model = LogisticRegression().fit(data.source[list(data.features)], data.source.y)
    err_early = 1 - model.score(early[list(data.features)], early.y)
    err_late = 1 - model.score(late[list(data.features)], late.y)
    assert err_early < 0.1
    assert err_late == pytest.approx(data.truth["source_model_error_after_drift"], abs=0.05)
    # gradual: the error in the middle of the drift lies in between
    mid = stream[(stream.t >= (t0 + t1) / 2 - 200) & (stream.t < (t0 + t1) / 2 + 200)]
    err_mid = 1 - model.score(mid[list(data.features)], mid.y)
    assert err_early + 0.05 < err_mid < err_late - 0.05


def test_drifting_stream_errors() -> None:
    with pytest.raises(InvalidParameterError, match="before drift_end"):
        drifting_stream(drift_start=0.8, drift_end=0.2)
    with pytest.raises(InvalidParameterError, match="rotation_deg"):
        drifting_stream(rotation_deg=270)
    with pytest.raises(InvalidParameterError, match="coin flips"):
        drifting_stream(label_noise=0.5)


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(sorted(SHIFT_SCENARIOS)),
    n_source=st.integers(10, 300),
    n_target=st.integers(10, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_sizes_are_honoured(name: str, n_source: int, n_target: int, seed: int) -> None:
    size = "n_stream" if name == "drifting_stream" else "n_target"
    data = SHIFT_SCENARIOS[name](n_source=n_source, **{size: n_target}, random_state=seed)
    assert (len(data.source), len(data.target)) == (n_source, n_target)
    Xs, ys, Xt, yt = data.arrays()
    assert np.isfinite(Xs).all()
    assert np.isfinite(Xt).all()
    assert set(ys.tolist()) | set(yt.tolist()) <= set(range(len(data.classes)))


def test_flu_season_shift_is_correctable_without_target_labels() -> None:
    """The lesson's claim: EM on a summer model's winter outputs recovers the winter prior."""
    data = flu_season(n_source=3000, n_target=3000, random_state=1)
    Xs, ys, Xt, yt = data.arrays()
    mean, sd = Xs.mean(0), Xs.std(0)
    model = LogisticRegression(max_iter=2000).fit((Xs - mean) / sd, ys)
    probs = model.predict_proba((Xt - mean) / sd)
    prior, adjusted = _em_prior(probs, np.bincount(ys, minlength=3) / len(ys))
    truth = np.array([data.truth["target_prior"][c] for c in data.classes])
    np.testing.assert_allclose(prior, truth, atol=0.04)
    # and the adjusted predictions are more accurate in winter than the raw ones
    assert (adjusted.argmax(1) == yt).mean() > (probs.argmax(1) == yt).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drifting_stream_is_caught_by_a_monitor_on_the_error_stream(seed: int) -> None:
    """ADWIN on the source model's errors stays quiet before the drift and fires during it."""
    from river import drift

    data = drifting_stream(random_state=seed)
    features = list(data.features)
    model = LogisticRegression().fit(data.source[features], data.source.y)
    wrong = model.predict(data.target[features]) != data.target.y.to_numpy()
    detector = drift.ADWIN()
    alarms = []
    for t, error in zip(data.target.t.to_numpy(), wrong, strict=True):
        detector.update(int(error))
        if detector.drift_detected:
            alarms.append(int(t))
    assert alarms
    assert data.truth["drift_start_t"] < alarms[0] < data.truth["drift_end_t"]
