"""Model outputs on Dask: BBSD, label shift and estimated accuracy against the in-memory answer."""

from __future__ import annotations

import sys

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import torch

from nndoctor.exceptions import DataValidationError, MissingDependencyError
from nndoctor.shift import bbsd_test


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _probs(seed: int, n: int, alpha: list[float]) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(alpha, size=n)


# ---------------------------------------------------------------------------------- BBSD


def test_bbsd_counts_and_chi2_equal_in_memory_and_ks_within_its_bound():
    src, tgt = _probs(0, 3000, [2, 2, 2]), _probs(1, 2500, [2.3, 2, 1.8])
    got = bbsd_test(
        da.from_array(src, chunks=700), dd.from_pandas(pd.DataFrame(tgt), npartitions=3)
    )
    want = bbsd_test(src, tgt)
    assert (got.engine, want.engine) == ("dask", "in-memory")
    # exact counts: the chi-squared part identical to the last digit
    for key in ("chi2_statistic", "chi2_pvalue", "chi2_dof", "n_source", "n_target"):
        assert getattr(got, key) == getattr(want, key), key
    np.testing.assert_array_equal(got.source_counts, want.source_counts)
    np.testing.assert_array_equal(got.target_counts, want.target_counts)
    # 3000 rows overflow a k=2000 sketch: a positive bound that holds, conservative p-values
    assert 0 < got.ks_error < 0.01
    assert np.all(np.abs(got.ks_statistics - want.ks_statistics) <= got.ks_error)
    assert np.all(got.ks_pvalues >= want.ks_pvalues)
    from nndoctor.report import to_sections

    (section,) = to_sections(got)
    assert f"within ±{got.ks_error:.2g}" in section.verdict


def test_bbsd_small_tables_equal_in_memory_everywhere():
    src, tgt = _probs(2, 900, [1, 2, 3, 1]), _probs(3, 700, [1, 2, 3, 1])
    got = bbsd_test(da.from_array(src, chunks=250), da.from_array(tgt, chunks=300))
    want = bbsd_test(src, tgt)
    assert got.ks_error == 0.0  # the sketches hold every value
    g, w = got.to_dict(), want.to_dict()
    assert g.pop("engine") == "dask"
    w.pop("engine")
    assert g == w


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _features(seed: int, n: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, size=(n, 4))


def test_bbsd_runs_torch_sklearn_and_numpy_models_per_partition():
    from sklearn.linear_model import LogisticRegression

    xs, xt = _features(0, 1200), _features(1, 1000, 0.3)
    ys = (xs[:, 0] + xs[:, 1] > 0).astype(int) + (xs[:, 2] > 1)
    fs = pd.DataFrame(xs, columns=list("abcd"))
    clf = LogisticRegression(max_iter=200).fit(fs, ys)
    w = np.random.default_rng(5).normal(size=(4, 3))

    def numpy_model(x: np.ndarray) -> np.ndarray:
        z = x @ w
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    ft = pd.DataFrame(xt, columns=list("abcd"))
    frame_s, frame_t = dd.from_pandas(fs, npartitions=3), dd.from_pandas(ft, npartitions=2)
    for model in (_net(0), clf, numpy_model):
        got = bbsd_test(frame_s, frame_t, model=model)
        want = bbsd_test(fs, ft, model=model)
        np.testing.assert_array_equal(got.source_counts, want.source_counts)
        np.testing.assert_array_equal(got.target_counts, want.target_counts)
        assert got.chi2_statistic == want.chi2_statistic
        assert got.chi2_pvalue == want.chi2_pvalue
        np.testing.assert_allclose(got.ks_statistics, want.ks_statistics, atol=1e-12)


def test_bbsd_model_ships_to_a_local_cluster():
    from distributed import Client, LocalCluster

    xs, xt = _features(0, 1500), _features(1, 1500, 0.5)
    net = _net(1)
    want = bbsd_test(xs, xt, model=net)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        got = bbsd_test(da.from_array(xs, chunks=400), da.from_array(xt, chunks=500), model=net)
        assert {"bbsd_summary", "bbsd_merge"} <= set(cluster.scheduler.task_prefixes)
    np.testing.assert_array_equal(got.source_counts, want.source_counts)
    np.testing.assert_array_equal(got.target_counts, want.target_counts)
    assert got.chi2_statistic == want.chi2_statistic
    assert got.drift_detected
    assert want.drift_detected


def test_bbsd_class_count_mismatch_and_bad_probabilities_raise():
    src = da.from_array(_probs(0, 100, [1, 1, 1]), chunks=50)
    with pytest.raises(DataValidationError, match="3 were expected"):
        bbsd_test(src, da.from_array(_probs(1, 100, [1, 1]), chunks=50))
    bad = _probs(1, 100, [1, 1, 1])
    bad[70] = [0.5, 0.5, 0.5]
    with pytest.raises(DataValidationError, match="sum to 1"):
        bbsd_test(src, da.from_array(bad, chunks=50))


def test_bbsd_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasketches", None)
    src = da.from_array(_probs(0, 100, [1, 1, 1]), chunks=50)
    with pytest.raises(MissingDependencyError, match=r"nndoctor\[dask\]"):
        bbsd_test(src, _probs(1, 100, [1, 1, 1]))


# ---------------------------------------------------------------------------- label shift


def _posteriors(prior: list[float], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes on a line and a slightly overconfident model's posteriors."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=prior)
    x = rng.normal(1.5 * y, 1.0)
    logits = -1.3 * (x[:, None] - 1.5 * np.arange(3)[None, :]) ** 2 / 2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), y


def _dask_pair(P: np.ndarray, y: np.ndarray, parts: int) -> tuple[dd.DataFrame, dd.Series]:
    frame = pd.DataFrame(P, columns=["p0", "p1", "p2"]).assign(label=y)
    ddf = dd.from_pandas(frame, npartitions=parts)
    return ddf[["p0", "p1", "p2"]], ddf["label"]


@pytest.mark.parametrize("method", ["bbse-hard", "rlls", "em"])
def test_label_shift_counts_methods_equal_in_memory_to_the_last_digit(method):
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 3000, 0)
    Pt, _ = _posteriors([0.6, 0.3, 0.1], 2000, 1)
    ds, dy = _dask_pair(Ps, ys, 4)
    got_est = LabelShiftEstimator(method, n_bootstrap=0).fit(ds, dy)
    want_est = LabelShiftEstimator(method, n_bootstrap=0).fit(Ps, ys)
    np.testing.assert_array_equal(got_est.source_prior_, want_est.source_prior_)
    if method != "em":
        np.testing.assert_array_equal(got_est.confusion_matrix_, want_est.confusion_matrix_)
    got = got_est.estimate(da.from_array(Pt, chunks=600))
    want = want_est.estimate(Pt)
    if method == "em":  # EM's sums per partition: equal to rounding
        np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-12)
        assert got.n_iter == want.n_iter
    else:  # counts: identical
        assert got.to_dict() == want.to_dict()
    assert got.target_prior[0] > 0.5


def test_label_shift_em_bcts_small_held_out_set_is_the_in_memory_fit():
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 2000, 2)
    Pt, _ = _posteriors([0.2, 0.2, 0.6], 2500, 3)
    ds, dy = _dask_pair(Ps, ys, 3)
    got_est = LabelShiftEstimator(n_bootstrap=0).fit(ds, dy)
    want_est = LabelShiftEstimator(n_bootstrap=0).fit(Ps, ys)
    assert got_est.temperature_ == want_est.temperature_
    np.testing.assert_array_equal(got_est.bias_, want_est.bias_)
    got = got_est.estimate(dd.from_pandas(pd.DataFrame(Pt), npartitions=4))
    want = want_est.estimate(Pt)
    np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.target_prior, want.target_prior, rtol=0, atol=1e-10)
    assert (got.n_iter, got.converged, got.n_source, got.n_target) == (
        want.n_iter, want.converged, 2000, 2500,
    )  # fmt: skip
    assert abs(got.target_prior[2] - 0.6) < 0.06


def test_label_shift_em_bcts_large_held_out_set_calibrates_on_a_sample(monkeypatch):
    from nndoctor.shift import LabelShiftEstimator, _dask_models

    monkeypatch.setattr(_dask_models, "CALIBRATION_MAX_ROWS", 800)
    Ps, ys = _posteriors([0.4, 0.3, 0.3], 4000, 4)
    Pt, _ = _posteriors([0.7, 0.2, 0.1], 3000, 5)
    ds, dy = _dask_pair(Ps, ys, 4)
    est = LabelShiftEstimator(n_bootstrap=0, random_state=0).fit(ds, dy)
    again = LabelShiftEstimator(n_bootstrap=0, random_state=0).fit(ds, dy)
    full = LabelShiftEstimator(n_bootstrap=0).fit(Ps, ys)
    assert est.temperature_ == again.temperature_  # the seeded sample is the same
    assert est.temperature_ != full.temperature_  # ... and is not every row
    assert abs(est.temperature_ / full.temperature_ - 1) < 0.2
    # the source prior: the mean calibrated posterior over all 4000 rows, not the sample
    np.testing.assert_allclose(est.source_prior_, est.calibrate(Ps).mean(axis=0), atol=1e-12)
    # the same calibration: the Dask estimate equals the in-memory one
    got, want = est.estimate(da.from_array(Pt, chunks=1000)), est.estimate(Pt)
    np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-10)
    assert abs(got.target_prior[0] - 0.7) < 0.06


@pytest.mark.parametrize("method", ["bbse-hard", "em"])
def test_label_shift_on_dask_bootstraps_with_poisson_weights(method):
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 1500, 6)
    Pt, _ = _posteriors([0.6, 0.3, 0.1], 1200, 11)
    tgt = da.from_array(Pt, chunks=400)

    def fitted(on_dask: bool) -> LabelShiftEstimator:
        # EM: one pass per iteration for all replicates; a looser tolerance keeps it short
        est = LabelShiftEstimator(method, n_bootstrap=60, random_state=0, tol=1e-5)
        return est.fit(*_dask_pair(Ps, ys, 3)) if on_dask else est.fit(Ps, ys)

    want = fitted(False).estimate(Pt)
    width = want.ci_high - want.ci_low
    runs = {
        "target on Dask": fitted(False).estimate(tgt),
        "held-out set on Dask": fitted(True).estimate(Pt),
    }
    if method == "bbse-hard":  # (EM: the same passes as "target on Dask"; kept short)
        runs["both on Dask"] = fitted(True).estimate(tgt)
    for name, got in runs.items():
        assert got.n_bootstrap == 60, name
        assert np.all(got.ci_low < got.weights), name
        assert np.all(got.weights < got.ci_high), name
        # the Poisson bootstrap estimates the same spread as the in-memory resampling
        ratio = (got.ci_high - got.ci_low) / width
        assert np.all((ratio > 0.6) & (ratio < 1.6)), (name, ratio)
    if method == "bbse-hard":  # seeded: the same intervals again
        again = fitted(True).estimate(tgt)
        np.testing.assert_array_equal(again.ci_low, runs["both on Dask"].ci_low)


def test_label_shift_on_dask_takes_logits_and_adjusts_after_a_dask_fit():
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 1200, 12)
    Pt, _ = _posteriors([0.2, 0.5, 0.3], 900, 13)
    Zs, Zt = np.log(Ps) + 3.0, np.log(Pt) - 1.0  # logits: any shift per row
    got_est = LabelShiftEstimator(n_bootstrap=0, inputs="logits").fit(*_dask_pair(Zs, ys, 3))
    want_est = LabelShiftEstimator(n_bootstrap=0, inputs="logits").fit(Zs, ys)
    got, want = got_est.estimate(da.from_array(Zt, chunks=300)), want_est.estimate(Zt)
    np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-10)
    # the estimator fitted on Dask ships to the workers without the Dask collections it holds
    on_dask = LabelShiftEstimator("em", n_bootstrap=0).fit(*_dask_pair(Ps, ys, 2))
    on_dask.estimate(Pt)
    adjusted = on_dask.adjust(da.from_array(Pt, chunks=300)).compute()
    np.testing.assert_array_equal(adjusted, on_dask.adjust(Pt))


def test_label_shift_on_columns_of_one_parquet_dataset(tmp_path):
    """Columns of one Parquet dataset, passed as they come: Dask reads the label column alone in
    fewer, fused partitions than the probability columns; the two are still paired row by row."""
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 3000, 3)
    cols = ["p0", "p1", "p2"]
    table = pd.DataFrame(Ps, columns=cols).assign(y=ys)
    for i, rows in enumerate(np.array_split(np.arange(3000), 6)):
        table.iloc[rows].to_parquet(tmp_path / f"part{i}.parquet")
    frame = dd.read_parquet(str(tmp_path / "*.parquet"))
    assert len(frame["y"].to_delayed()) < len(frame[cols].to_delayed())  # the trap is there
    for method in ("bbse-hard", "em"):
        got = LabelShiftEstimator(method, n_bootstrap=0).fit(frame[cols], frame["y"])
        want = LabelShiftEstimator(method, n_bootstrap=0).fit(Ps, ys)
        np.testing.assert_array_equal(got.source_prior_, want.source_prior_)
        np.testing.assert_allclose(
            got.estimate(frame[cols]).weights, want.estimate(Ps).weights, rtol=0, atol=1e-12
        )


def test_label_shift_on_dask_checks_its_inputs():
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 600, 7)
    ds, dy = _dask_pair(Ps, np.where(ys == 2, 1, ys), 3)
    with pytest.raises(DataValidationError, match=r"class\(es\) \[2\] never occur"):
        LabelShiftEstimator(n_bootstrap=0).fit(ds, dy)
    with pytest.raises(DataValidationError, match="same partitions"):
        LabelShiftEstimator(n_bootstrap=0).fit(ds, da.from_array(ys, chunks=100))
    est = LabelShiftEstimator(n_bootstrap=0).fit(Ps, ys)
    with pytest.raises(DataValidationError, match="3 were expected"):
        est.estimate(da.from_array(Ps[:, :2] / Ps[:, :2].sum(1, keepdims=True), chunks=300))


# ------------------------------------------------------------------------ estimated accuracy


def _model_scores(seed: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A calibrated model on the held-out set, less confident on the target."""
    rng = np.random.default_rng(seed)

    def probs(n: int, sharp: float) -> np.ndarray:
        e = np.exp(rng.normal(size=(n, k)) * sharp)
        return e / e.sum(axis=1, keepdims=True)

    Ps = probs(1500, 3.0)
    ys = (rng.random(1500)[:, None] > np.cumsum(Ps, axis=1)).sum(axis=1)
    return Ps, ys, probs(3000, 1.0)


@pytest.mark.parametrize("k", [2, 3])
def test_accuracy_on_dask_equals_in_memory_point_estimates(k):
    from nndoctor.shift import estimate_accuracy

    Ps, ys, Pt = _model_scores(k, k)
    got = estimate_accuracy(
        da.from_array(Ps, chunks=500), da.from_array(ys, chunks=500),
        dd.from_pandas(pd.DataFrame(Pt), npartitions=3), random_state=0, n_bootstrap=400,
    )  # fmt: skip
    want = estimate_accuracy(Ps, ys, Pt, random_state=0, n_bootstrap=400)
    assert [e.method for e in got] == [e.method for e in want]
    assert got.source_accuracy == want.source_accuracy
    assert got["atc"].accuracy == want["atc"].accuracy  # an exact count
    for g, w in zip(got, want, strict=True):
        assert (g.n_target, g.predictions) == (3000, "argmax")
        assert set(g.details) - set(w.details) <= {"roc_auc_binning_error"}
        for name, metric in g.metrics.items():
            if name == "roc_auc":  # binned: within the stated bound, no interval
                bound = g.details["roc_auc_binning_error"]
                assert 0 < bound < 1e-3
                assert abs(metric.value - w.metrics[name].value) <= bound
                assert np.isnan(metric.ci_low)
                continue
            assert metric.value == pytest.approx(w.metrics[name].value, abs=1e-12), name
            assert metric.source_value == w.metrics[name].source_value
            if not np.isnan(w.metrics[name].ci_low):  # normal vs Bernoulli draws: close
                assert metric.ci_low == pytest.approx(w.metrics[name].ci_low, abs=0.012)
                assert metric.ci_high == pytest.approx(w.metrics[name].ci_high, abs=0.012)
    assert got["confidence-based"].accuracy < got.source_accuracy


def test_accuracy_on_dask_threshold_and_a_sampled_held_out_set(monkeypatch):
    from nndoctor.shift import _dask_models, estimate_accuracy

    Ps, ys, Pt = _model_scores(7, 2)
    src, lab = da.from_array(Ps[:, 1], chunks=400), da.from_array(ys, chunks=400)
    tgt = da.from_array(Pt[:, 1], chunks=1000)
    kw = {"method": "confidence-based", "threshold": 0.65, "random_state": 1}
    got = estimate_accuracy(src, lab, tgt, n_bootstrap=0, **kw)
    want = estimate_accuracy(Ps[:, 1], ys, Pt[:, 1], n_bootstrap=0, **kw)
    assert got.predictions == want.predictions == "threshold 0.65"
    for name in ("accuracy", "precision", "recall", "f1"):
        assert got.metrics[name].value == pytest.approx(want.metrics[name].value, abs=1e-12)
    monkeypatch.setattr(_dask_models, "CALIBRATION_MAX_ROWS", 600)
    a = estimate_accuracy(src, lab, tgt, n_bootstrap=0, **kw)
    b = estimate_accuracy(src, lab, tgt, n_bootstrap=0, **kw)
    assert a.to_dict() == b.to_dict()  # the seeded sample is the same
    assert a.details["n_blocks"] < want.details["n_blocks"]  # ... and smaller
    assert abs(a.accuracy - want.accuracy) < 0.05


def test_accuracy_on_dask_refuses_what_does_not_run():
    from nndoctor.exceptions import InvalidParameterError
    from nndoctor.shift import estimate_accuracy

    Ps, ys, Pt = _model_scores(8, 3)
    tgt = da.from_array(Pt, chunks=1000)
    with pytest.raises(InvalidParameterError, match="needs source_weights on Dask"):
        estimate_accuracy(Ps, ys, tgt, method="importance-weighted")
    with pytest.raises(InvalidParameterError, match="target_pred"):
        estimate_accuracy(Ps, ys, tgt, source_pred=ys, target_pred=np.zeros(3000, int))
    res = estimate_accuracy(Ps, ys, tgt, n_bootstrap=0)
    assert list(res.skipped) == ["importance-weighted"]
    # with weights for the held-out rows it runs: the in-memory estimate, the target counted
    beta = np.random.default_rng(0).random(1500)
    kw = {"method": "importance-weighted", "source_weights": beta}
    got, want = estimate_accuracy(Ps, ys, tgt, **kw), estimate_accuracy(Ps, ys, Pt, **kw)
    assert got.to_dict() == want.to_dict()


def test_label_shift_adjust_on_dask_is_lazy_and_equals_in_memory():
    from nndoctor.shift import LabelShiftEstimator

    Ps, ys = _posteriors([1 / 3, 1 / 3, 1 / 3], 1500, 9)
    Pt, _ = _posteriors([0.6, 0.3, 0.1], 1200, 10)
    est = LabelShiftEstimator(n_bootstrap=0).fit(Ps, ys)
    est.estimate(Pt)
    want = est.adjust(Pt)
    arr = est.adjust(da.from_array(Pt, chunks=500))
    frame = est.adjust(dd.from_pandas(pd.DataFrame(Pt, columns=["a", "b", "c"]), npartitions=3))
    assert isinstance(arr, da.Array)
    assert isinstance(frame, dd.DataFrame)
    np.testing.assert_array_equal(arr.compute(), want)
    got = frame.compute()
    assert list(got.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(got.to_numpy(), want)


def test_label_shift_on_model_outputs_ships_the_model_to_a_local_cluster():
    from distributed import Client, LocalCluster

    from nndoctor.shift import LabelShiftEstimator
    from nndoctor.shift._dask_models import apply_model, model_outputs

    net = _net(3)
    xs, xt = _features(3, 1500), _features(4, 1200, 0.4)
    Ps = apply_model(net, xs, "X")
    ys = np.random.default_rng(0).random(1500)[:, None] > np.cumsum(Ps, axis=1)
    ys = ys.sum(axis=1)  # labels drawn from the network's own posteriors: calibrated
    want = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(Ps, ys)
    want_res = want.estimate(apply_model(net, xt, "X"))
    frame_t = dd.from_pandas(pd.DataFrame(xt, columns=list("abcd")), npartitions=3)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        src = model_outputs(net, da.from_array(xs, chunks=500))
        got = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(src, ys)
        got_res = got.estimate(model_outputs(net, frame_t))
        ran = set(cluster.scheduler.task_prefixes)
        assert sum(name.startswith("apply_model") for name in ran) == 2  # the network, twice
        assert "partition_sums" in ran
    np.testing.assert_array_equal(got.confusion_matrix_, want.confusion_matrix_)
    assert got_res.to_dict() == want_res.to_dict()
