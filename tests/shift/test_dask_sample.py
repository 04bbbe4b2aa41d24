"""The classifier test, the diagnosis and ShiftDetector on Dask: a bounded random sample."""

from __future__ import annotations

import sys

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from nndoctor.exceptions import DataValidationError, MissingDependencyError
from nndoctor.report import to_sections
from nndoctor.scenarios import flu_season
from nndoctor.shift import ShiftDetector, classifier_test, diagnose, mmd_test
from nndoctor.shift._dask_sample import sample_rows


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _frames(seed: int, shift: float = 0.0, m: int = 3000, n: int = 2500):
    rng = np.random.default_rng(seed)
    src = pd.DataFrame(rng.normal(size=(m, 3)), columns=["a", "b", "c"])
    tgt = pd.DataFrame(rng.normal(size=(n, 3)) + np.array([shift, 0, 0]), columns=["a", "b", "c"])
    return src, tgt


def test_sample_rows_is_bounded_reproducible_and_keeps_labels_with_their_rows():
    frame = pd.DataFrame({"a": np.arange(5000.0), "b": np.arange(5000.0) * 2})
    dx = dd.from_pandas(frame, npartitions=4)
    labels = dd.from_pandas(pd.Series(np.arange(5000) % 7), npartitions=4)
    one, y1, rows = sample_rows(dx, 600, np.random.default_rng(1), "X", labels=labels)
    two, _, _ = sample_rows(dx, 600, np.random.default_rng(1), "X", labels=labels)
    other, _, _ = sample_rows(dx, 600, np.random.default_rng(2), "X")
    assert rows == 5000
    assert 596 <= len(one) <= 604  # round(frac * len) per partition
    pd.testing.assert_frame_equal(one, two)
    assert not one["a"].equals(other["a"])
    assert one["a"].is_unique
    np.testing.assert_array_equal(y1, one["a"].to_numpy().astype(int) % 7)
    # a table no larger than the sample is taken whole
    whole, _, _ = sample_rows(dx, 10_000, np.random.default_rng(1), "X")
    pd.testing.assert_frame_equal(whole, frame)


def test_c2st_on_a_table_that_fits_the_sample_equals_in_memory():
    src, tgt = _frames(0, shift=0.3, m=800, n=700)
    got = classifier_test(
        dd.from_pandas(src, npartitions=3), dd.from_pandas(tgt, npartitions=2),
        model=LogisticRegression(), random_state=0,
    )  # fmt: skip
    want = classifier_test(src, tgt, model=LogisticRegression(), random_state=0)
    assert got.sampled_from == (800, 700)
    assert want.sampled_from is None
    assert got.to_dict() | {"sampled_from": None} == want.to_dict()


def test_c2st_samples_each_table_and_states_it():
    src, tgt = _frames(1, shift=0.4)
    dx = da.from_array(src.to_numpy(), chunks=(800, -1))
    dy = da.from_array(tgt.to_numpy(), chunks=(600, -1))
    res = classifier_test(dx, dy, model=LogisticRegression(), sample_size=1000, random_state=0)
    again = classifier_test(dx, dy, model=LogisticRegression(), sample_size=1000, random_state=0)
    assert res.to_dict() == again.to_dict()
    assert res.sampled_from == (3000, 2500)
    assert abs(res.n_source - 1000) <= 4
    assert abs(res.n_target - 1000) <= 4
    assert res.to_dict()["sampled_from"] == [3000, 2500]
    assert res.drift_detected
    summary = to_sections(res)[0].verdict
    assert "random sample of" in summary
    assert "3,000 source" in summary


def test_c2st_false_positive_rate_on_dask_samples():
    # 30 seeds under H0, 300-row samples of 1,200-row tables: rejections at 0.05 stay rare
    rejected = []
    for seed in range(30):
        src, tgt = _frames(100 + seed, m=1200, n=1200)
        res = classifier_test(
            dd.from_pandas(src, npartitions=2), dd.from_pandas(tgt, npartitions=2),
            model=LogisticRegression(), n_splits=2, sample_size=300, random_state=seed,
        )  # fmt: skip
        rejected.append(res.pvalue <= 0.05)
    assert np.mean(rejected) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 30)


def test_diagnose_on_dask_runs_on_samples_with_their_labels():
    Xs, ys, Xt, _ = flu_season(n_source=2500, n_target=2500, random_state=0).arrays()
    d = diagnose(
        da.from_array(Xs, chunks=(800, -1)), da.from_array(ys, chunks=800),
        da.from_array(Xt, chunks=(700, -1)), random_state=0, sample_size=1500,
    )  # fmt: skip
    assert d.kind == "label"  # as in memory (the scenario's truth)
    assert d.sampled_from == (2500, 2500)
    assert abs(d.n_source - 1500) <= 4
    assert abs(d.n_target - 1500) <= 4
    assert "random sample of" in to_sections(d)[0].verdict


def test_diagnose_with_target_labels_on_tables_that_fit_equals_in_memory():
    Xs, ys, Xt, yt = flu_season(n_source=800, n_target=800, random_state=1).arrays()
    got = diagnose(
        da.from_array(Xs, chunks=(300, -1)), da.from_array(ys, chunks=300),
        da.from_array(Xt, chunks=(500, -1)), da.from_array(yt, chunks=500), random_state=0,
    )  # fmt: skip
    want = diagnose(Xs, ys, Xt, yt, random_state=0)
    assert got.sampled_from == (800, 800)
    assert got.to_dict() | {"sampled_from": None} == want.to_dict()


def test_diagnose_refuses_labels_partitioned_unlike_the_features():
    Xs, ys, Xt, _ = flu_season(n_source=600, n_target=600, random_state=0).arrays()
    with pytest.raises(DataValidationError, match="partitioned like the features"):
        diagnose(
            da.from_array(Xs, chunks=(200, -1)), da.from_array(ys, chunks=300),
            da.from_array(Xt, chunks=(200, -1)), random_state=0,
        )  # fmt: skip
    with pytest.raises(DataValidationError, match="Dask series or array"):
        diagnose(da.from_array(Xs, chunks=(200, -1)), ys, Xt, random_state=0)


@pytest.mark.parametrize("method", ["features", "c2st", "mmd"])
def test_shift_detector_takes_dask_reference_and_batches(method):
    src, tgt = _frames(2, shift=0.5, m=1500, n=800)
    _, same = _frames(3, m=10, n=800)
    options = {"model": LogisticRegression()} if method == "c2st" else None
    det = ShiftDetector(method, options=options, random_state=0)
    det.fit(dd.from_pandas(src, npartitions=3))
    assert det.n_reference_ == 1500
    shifted = det.test(dd.from_pandas(tgt, npartitions=2))
    assert shifted.drift_detected
    # an in-memory batch against the Dask reference, from the same law: no evidence of a change
    # (p above 0.001, not alpha: a single H0 draw rejects at alpha 5% of the time, and did for
    # c2st, p = 0.014, when the rows' canonical order gave the folds other rows)
    assert det.test(same).pvalue > 0.001
    if method == "mmd":
        assert shifted.method == "mmd-rff"
        assert det.bandwidth_ > 0


def test_without_the_extra_a_dask_input_names_it(monkeypatch):
    src, tgt = _frames(4, m=100, n=100)
    dx, dy = dd.from_pandas(src, npartitions=2), dd.from_pandas(tgt, npartitions=2)
    monkeypatch.setitem(sys.modules, "datasketches", None)
    calls = (
        lambda: classifier_test(dx, dy),
        lambda: mmd_test(dx, dy),
        lambda: ShiftDetector("mmd").fit(dx),
    )
    for call in calls:
        with pytest.raises(MissingDependencyError, match=r"nndoctor\[dask\]"):
            call()
