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
