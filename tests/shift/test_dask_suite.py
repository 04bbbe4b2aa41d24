"""compare_samples on Dask runs the in-memory plan: every method, the same report and verdicts."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nndoctor.exceptions import InvalidParameterError
from nndoctor.shift import ShiftDetector, bbsd_test, compare_samples, mmd_test


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _tables(seed: int, shift: float, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two numeric columns (one with missing values), a categorical one and a label."""
    rng = np.random.default_rng(seed)

    def table(delta: float) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "a": rng.normal(delta, 1, n),
                "b": rng.normal(size=n),
                "city": rng.choice(list("abc"), n),
                "y": rng.integers(0, 2, n),
            }
        )
        frame.loc[::9, "b"] = np.nan
        return frame

    return table(0.0), table(shift)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(2, 3)


def _dask(frame: pd.DataFrame) -> dd.DataFrame:
    return dd.from_pandas(frame, npartitions=3)


def _seeds(random_state: int, k: int) -> list[int]:
    """The seeds compare_samples draws for its tests, in plan order."""
    rng = np.random.default_rng(random_state)
    return [int(rng.integers(2**31 - 1)) for _ in range(k)]


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_auto_with_a_model_runs_the_in_memory_plan_with_the_same_verdicts(shift):
    src, tgt = _tables(3, shift)
    net = _model()
    got = compare_samples(_dask(src), _dask(tgt), label="y", model=net, random_state=0)
    want = compare_samples(src, tgt, label="y", model=net, random_state=0, n_permutations=200)
    assert got.methods == want.methods == ("features", "mmd", "bbsd")
    assert (got.n_source, got.n_target) == (want.n_source, want.n_target) == (400, 400)
    assert got.drift_detected == want.drift_detected == (shift > 0)
    # the report's plots: observed values of the most-drifted numeric features, as in memory
    assert set(got.samples) == set(want.samples) == {"a", "b"}
    assert len(got.samples["a"]["source"]) == 400
    assert len(got.samples["b"]["target"]) == 355  # the observed values
    assert sorted(got.samples["b"]["target"]) == sorted(want.samples["b"]["target"])
    assert got.mmd.drift_detected == want.mmd.drift_detected
    assert got.features.drift_detected == want.features.drift_detected
    # the categorical column and the missing counts: the same seeds, so identical
    assert got.features.features[2].to_dict() == want.features.features[2].to_dict()
    for g, w in zip(got.features.features, want.features.features, strict=True):
        assert g.missingness == w.missingness
        assert abs(g.statistic - w.statistic) <= g.statistic_error + 1e-12
    # MMD: the random-feature test on the complete rows, equal to it in memory with its seed
    assert got.mmd.method == "mmd-rff"
    assert want.mmd.method == "mmd-permutation"
    assert (
        got.mmd.details["complete_rows"]
        == want.mmd.details["complete_rows"]
        == ("355/400 and 355/400")
    )
    rows = [f[["a", "b"]].dropna() for f in (src, tgt)]
    rff = mmd_test(*rows, standardize=True, method="rff", random_state=_seeds(0, 2)[1])
    assert got.mmd.statistic == pytest.approx(rff.statistic, rel=1e-6, abs=1e-9)
    assert got.mmd.pvalue == pytest.approx(rff.pvalue, rel=1e-6, abs=1e-9)
    # BBSD: the model ran on the partitions; the counts and the chi-squared test are exact
    assert got.bbsd.engine == "dask"
    assert np.array_equal(got.bbsd.source_counts, want.bbsd.source_counts)
    assert np.array_equal(got.bbsd.target_counts, want.bbsd.target_counts)
    assert got.bbsd.chi2_statistic == want.bbsd.chi2_statistic
    assert got.bbsd.chi2_pvalue == want.bbsd.chi2_pvalue
    assert got.bbsd.drift_detected == want.bbsd.drift_detected


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_each_single_method_matches_in_memory(shift):
    src, tgt = _tables(4, shift, n=300)
    dx, dy = _dask(src), _dask(tgt)
    got, want = {}, {}
    for method in ("ks", "chi2", "mmd", "c2st"):
        got[method] = compare_samples(dx, dy, method=method, label="y", random_state=1)
        want[method] = compare_samples(src, tgt, method=method, label="y", random_state=1)
        assert got[method].methods == want[method].methods, method
        assert got[method].drift_detected == want[method].drift_detected, method
        assert (got[method].n_source, got[method].n_target) == (300, 300), method
    # ks runs every column's test as in memory (the text column's chi-squared test)
    assert [f.test for f in got["ks"].features.features] == ["ks", "ks", "chi2"]
    # chi2 alone: the categorical column, exact
    assert got["chi2"].features.to_dict()["features"] == want["chi2"].features.to_dict()["features"]
    # c2st: tables smaller than the sample are taken whole, so the in-memory test's answer
    assert got["c2st"].classifier.sampled_from == (300, 300)
    assert got["c2st"].classifier.pvalue == pytest.approx(want["c2st"].classifier.pvalue)
    assert got["c2st"].drift_detected == (shift > 0)
    # mmd alone: the random-feature test with the first seed
    rows = [f[["a", "b"]].dropna() for f in (src, tgt)]
    rff = mmd_test(*rows, standardize=True, method="rff", random_state=_seeds(1, 1)[0])
    assert got["mmd"].mmd.pvalue == pytest.approx(rff.pvalue, rel=1e-6, abs=1e-9)
    assert got["mmd"].drift_detected == (shift > 0)


def test_a_column_missing_throughout_one_table_is_left_out_of_the_mmd_as_in_memory():
    src, tgt = _tables(5, 0.0, n=200)
    src["e"] = np.nan
    tgt["e"] = 1.0
    got = compare_samples(_dask(src), _dask(tgt), method="mmd", label="y", random_state=2)
    want = compare_samples(src, tgt, method="mmd", label="y", random_state=2, n_permutations=50)
    assert got.mmd.details["columns_left_out"] == want.mmd.details["columns_left_out"] == "e"
    assert got.mmd.details["complete_rows"] == want.mmd.details["complete_rows"]
    assert got.mmd.n_source == want.mmd.n_source == 177
    # BBSD without a model is refused as in memory; a model needs the numeric columns' rows
    with pytest.raises(InvalidParameterError, match="pass a model"):
        compare_samples(_dask(src), _dask(tgt), method="bbsd", label="y")


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_bbsd_detector_on_dask_equals_its_in_memory_chi2(shift):
    src, tgt = _tables(6, shift, n=300)
    net = _model()
    xs, xt = src[["a", "b"]].fillna(0.0), tgt[["a", "b"]].fillna(0.0)
    det = ShiftDetector("bbsd", options={"model": net}, random_state=0)
    want = det.fit(xs).test(xt)
    got_batch = det.test(_dask(xt))  # an in-memory reference, a Dask batch
    lazy = ShiftDetector("bbsd", options={"model": net}, random_state=0).fit(_dask(xs))
    got = lazy.test(_dask(xt))
    assert lazy.n_reference_ == 300
    for res in (got, got_batch):
        assert res.engine == "dask"
        assert res.chi2_statistic == want.chi2_statistic
        assert np.array_equal(res.target_counts, want.target_counts)
        assert res.drift_detected == want.drift_detected
    assert bbsd_test(_dask(xs), _dask(xt), model=net).chi2_pvalue == want.chi2_pvalue
