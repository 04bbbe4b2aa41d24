"""Per-feature tests on Dask collections: exact counts, the KS distance exactly bounded and the
same on every run."""

from __future__ import annotations

import sys

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from nndoctor.exceptions import MissingDependencyError
from nndoctor.shift import _dask as shift_dask
from nndoctor.shift import chi2_test, feature_test, ks_test


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _tables(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    src = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "city": rng.choice(list("abcde"), n),
            "b": rng.exponential(size=n),
        }
    )
    tgt = pd.DataFrame(
        {
            "a": rng.normal(0.1, 1, n),
            "city": rng.choice(list("abcdef"), n, p=[0.2, 0.2, 0.2, 0.2, 0.19, 0.01]),
            "b": rng.exponential(size=n),
        }
    )
    src.loc[::7, "a"] = np.nan
    tgt.loc[::5, "city"] = None
    tgt.loc[::3, "a"] = np.nan
    return src, tgt


def test_categorical_and_missing_counts_equal_in_memory_to_the_last_digit():
    src, tgt = _tables(0)
    got = feature_test(
        dd.from_pandas(src, npartitions=5), dd.from_pandas(tgt, npartitions=3), random_state=0
    )
    want = feature_test(src, tgt, random_state=0)
    assert got.engine == "dask"
    assert want.engine == "in-memory"
    # the chi-squared column: statistic, p-value, effects and bootstrap intervals identical
    assert got.features[1].to_dict() == want.features[1].to_dict()
    assert got.features[1].missingness is not None
    # the numeric columns: missing counts and the missing-rate test identical
    for g, w in zip(got.features, want.features, strict=True):
        assert g.missingness == w.missingness
        assert (g.n_source, g.n_target) == (w.n_source, w.n_target)
    assert got.features[0].missingness is not None


def test_chi2_test_with_missing_category_equals_in_memory():
    src, tgt = _tables(1)
    cols = ["city"]
    kw = {"random_state": 3, "missing": "category"}
    got = chi2_test(dd.from_pandas(src[cols], npartitions=4), tgt[cols], **kw)
    want = chi2_test(src[cols], tgt[cols], **kw)
    assert got.features == want.features


@pytest.mark.parametrize("seed", range(5))
def test_sketch_ks_within_stated_bound_of_exact(seed):
    src, tgt = _tables(seed, n=5000)
    got = shift_dask.feature_test(
        dd.from_pandas(src, npartitions=4),
        dd.from_pandas(tgt, npartitions=3),
        kinds=None,
        random_state=0,
        sketch_k=64,
    )
    want = feature_test(src, tgt, random_state=0)
    for g, w in zip(got.features, want.features, strict=True):
        if g.test != "ks":
            assert g.statistic_error == 0.0
            continue
        assert g.statistic_error > 0.0  # the sketch compacted: an approximate statistic
        assert abs(g.statistic - w.statistic) <= g.statistic_error
        assert g.pvalue >= w.pvalue  # conservative
        assert g.effect_ci[0] <= w.statistic <= g.effect_ci[1]


def test_sketch_is_exact_while_it_holds_every_value():
    src, tgt = _tables(2, n=500)
    got = ks_test(dd.from_pandas(src[["a", "b"]], npartitions=3), tgt[["a", "b"]], random_state=0)
    want = ks_test(src[["a", "b"]], tgt[["a", "b"]], random_state=0)
    for g, w in zip(got.features, want.features, strict=True):
        assert g.statistic_error == 0.0
        assert g.statistic == pytest.approx(w.statistic, abs=1e-12)
        assert g.pvalue == pytest.approx(w.pvalue, rel=1e-9)


def _ks_numbers(res) -> list[tuple[float, float, float]]:
    return [(f.statistic, f.statistic_error, f.pvalue) for f in res.features if f.test == "ks"]


def test_ks_is_the_same_on_every_run_and_every_partitioning():
    # the KLL sketches compact with unseeded random bits: the KS distance read from them
    # differed between runs; the grid's counts are exact and its sample hash-chosen
    src, tgt = _tables(4, n=6000)
    runs = []
    for parts, shuffle in ((4, False), (4, False), (7, False), (5, True)):
        s = src.sample(frac=1.0, random_state=1) if shuffle else src
        got = shift_dask.feature_test(
            dd.from_pandas(s, npartitions=parts),
            dd.from_pandas(tgt, npartitions=3),
            kinds=None,
            random_state=0,
            sketch_k=32,
        )
        runs.append(_ks_numbers(got))
    assert runs[0][0][1] > 0.0  # the grid is coarser than the data: a bounded statistic
    assert all(r == runs[0] for r in runs[1:])


def test_ks_statistic_is_a_lower_bound_with_ties_and_partitions():
    rng = np.random.default_rng(9)
    for decimals in (0, 1, 3):
        x = pd.DataFrame({"a": np.round(rng.normal(size=3000), decimals)})
        y = pd.DataFrame({"a": np.round(rng.normal(0.05, 1, size=2500), decimals)})
        got = shift_dask.feature_test(
            dd.from_pandas(x, npartitions=6), dd.from_pandas(y, npartitions=4),
            kinds="numeric", sketch_k=16, n_bootstrap=0,
        ).features[0]  # fmt: skip
        exact = ks_test(x, y, n_bootstrap=0).features[0]
        assert got.statistic <= exact.statistic + 1e-12
        assert exact.statistic <= got.statistic + got.statistic_error + 1e-12
        assert got.pvalue >= exact.pvalue  # conservative
        if decimals == 0:  # a handful of distinct values: all on the grid, so exact
            assert got.statistic_error == 0.0
            assert got.statistic == pytest.approx(exact.statistic, abs=1e-12)


def test_false_positive_rate_under_no_shift_at_most_alpha():
    alpha = 0.05
    rejected = 0
    seeds = range(100)
    # with k = 16 (a grid of at most 32 points) the p-value is taken at the grid's lower bound
    # of D, never above the exact D: the level is kept
    for seed in seeds:
        rng = np.random.default_rng(seed)
        x = da.from_array(rng.normal(size=(300, 1)), chunks=(150, 1))
        y = da.from_array(rng.normal(size=(250, 1)), chunks=(125, 1))
        res = shift_dask.feature_test(x, y, kinds="numeric", sketch_k=16, n_bootstrap=0)
        assert res.features[0].statistic_error > 0.0
        rejected += res.features[0].pvalue <= alpha
    assert rejected / len(seeds) <= alpha


def test_detects_a_shift_on_a_dask_array():
    rng = np.random.default_rng(0)
    x = da.from_array(rng.normal(size=(4000, 2)), chunks=(1000, 2))
    y = da.from_array(rng.normal(size=(4000, 2)) + np.array([0.3, 0.0]), chunks=(500, 1))
    res = ks_test(x, y, random_state=0)
    assert [f.name for f in res.features] == ["x0", "x1"]
    assert [f.drifted for f in res.features] == [True, False]


def test_without_the_extra_a_dask_input_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasketches", None)
    src, tgt = _tables(0, n=50)
    with pytest.raises(MissingDependencyError, match=r"nndoctor\[dask\]"):
        feature_test(dd.from_pandas(src, npartitions=2), tgt)


def test_different_columns_raise():
    src, tgt = _tables(0, n=50)
    from nndoctor.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="same columns"):
        feature_test(dd.from_pandas(src, npartitions=2), tgt.drop(columns="b"))


def test_local_cluster_gives_the_synchronous_answer():
    from distributed import Client, LocalCluster

    src, tgt = _tables(4, n=3000)
    dx, dy = dd.from_pandas(src, npartitions=6), dd.from_pandas(tgt, npartitions=4)
    want = shift_dask.feature_test(dx, dy, kinds=None, random_state=0, sketch_k=64)
    exact = feature_test(src, tgt, random_state=0)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        got = shift_dask.feature_test(dx, dy, kinds=None, random_state=0, sketch_k=64)
        assert {"summarize", "merge"} <= set(cluster.scheduler.task_prefixes)
    # counts are exact: the chi-squared column and every missing-rate test are identical
    assert got.features[1] == want.features[1]
    for g, w, e in zip(got.features, want.features, exact.features, strict=True):
        assert g.missingness == w.missingness
        # KLL compaction draws random bits that DataSketches does not let us seed: the KS
        # distance may differ between runs, each within its stated bound of the exact one
        assert abs(g.statistic - e.statistic) <= g.statistic_error
        assert abs(w.statistic - e.statistic) <= w.statistic_error


def _write_parquet(tmp_path, src: pd.DataFrame, tgt: pd.DataFrame) -> tuple[str, str]:
    for name, frame in (("src", src), ("tgt", tgt)):
        (tmp_path / name).mkdir()
        for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
            frame.iloc[part].to_parquet(tmp_path / name / f"part{i}.parquet")
    return str(tmp_path / "src" / "*.parquet"), str(tmp_path / "tgt")


def test_cli_engine_dask_reads_parquet_globs_and_directories(tmp_path):
    import json

    from typer.testing import CliRunner

    from nndoctor.cli import app

    src, tgt = _tables(5, n=600)
    glob_src, dir_tgt = _write_parquet(tmp_path, src, tgt)
    args = ["shift", "test", "--source", glob_src, "--target", dir_tgt, "--json", "--seed", "1"]
    out = CliRunner().invoke(app, [*args, "--engine", "dask"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    want = feature_test(src, tgt, random_state=1)
    assert got["methods"] == ["features", "mmd"]  # the in-memory plan (MMD: random features)
    assert (got["n_source"], got["n_target"]) == (600, 600)
    city = got["features"]["features"][1]
    assert city["statistic"] == want.features[1].statistic
    assert city["pvalue"] == want.features[1].pvalue
    assert got["features"]["engine"] == "dask"


def test_cli_engine_dask_empty_glob_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from nndoctor.cli import app

    src, tgt = _tables(5, n=60)
    glob_src, dir_tgt = _write_parquet(tmp_path, src, tgt)
    empty = str(tmp_path / "nothing" / "*.parquet")
    args = ["shift", "test", "--source", empty, "--target", dir_tgt, "--engine", "dask"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2
    assert "matches no Parquet file" in out.stderr
    assert out.stdout == ""
    # --scheduler with --engine in-memory, and BBSD without a model, are refused
    out = CliRunner().invoke(
        app, [*args[:-2], "--engine", "in-memory", "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert out.exit_code == 2
    assert "--engine dask" in out.stderr
    args[3] = glob_src
    out = CliRunner().invoke(app, [*args, "--method", "bbsd"])
    assert out.exit_code == 2
    assert "pass a model" in out.stderr


@pytest.mark.slow  # a process LocalCluster: about 10 s on the shared 2-core machine
def test_a_killed_worker_is_retried_and_the_answer_holds():
    import os
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster

    def slow(part: pd.DataFrame) -> pd.DataFrame:  # nested: cloudpickle ships it by value
        time.sleep(0.15)
        return part

    src, tgt = _tables(6, n=3000)
    dx = dd.from_pandas(src, npartitions=8).map_partitions(slow, meta=src.iloc[:0])
    dy = dd.from_pandas(tgt, npartitions=8).map_partitions(slow, meta=tgt.iloc[:0])
    exact = feature_test(src, tgt, random_state=0)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        before = set(client.run(os.getpid).values())
        victim = next(iter(before))
        killed_at: list[float] = []

        def kill() -> None:
            os.kill(victim, signal.SIGKILL)
            killed_at.append(time.monotonic())

        killer = threading.Timer(0.6, kill)
        killer.start()
        got = shift_dask.feature_test(dx, dy, kinds=None, random_state=0, sketch_k=64)
        finished_at = time.monotonic()
        killer.join()
    assert killed_at[0] < finished_at  # the worker was killed while the computation ran
    assert got.features[1] == exact.features[1]
    for g, e in zip(got.features, exact.features, strict=True):
        assert g.missingness == e.missingness
        assert abs(g.statistic - e.statistic) <= g.statistic_error


def test_compare_samples_on_dask_runs_the_in_memory_plan():
    from nndoctor.exceptions import InvalidParameterError
    from nndoctor.shift import compare_samples

    src, tgt = _tables(7, n=800)
    src["y"] = np.arange(800) % 2
    tgt["y"] = np.arange(800) % 2
    dx = dd.from_pandas(src, npartitions=3)
    rep = compare_samples(dx, tgt, label="y", random_state=0)
    want = compare_samples(src, tgt, label="y", random_state=0, n_permutations=100)
    assert rep.methods == want.methods == ("features", "mmd")
    assert (rep.n_source, rep.n_target) == (800, 800)
    assert [f.name for f in rep.features.features] == ["a", "city", "b"]
    assert (
        rep.features.features[1].missingness
        == feature_test(src.drop(columns="y"), tgt.drop(columns="y"), random_state=0)
        .features[1]
        .missingness
    )
    with pytest.raises(InvalidParameterError, match="pass a model"):
        compare_samples(dx, tgt, method="bbsd")


def test_cli_scheduler_address_runs_on_that_cluster(tmp_path):
    import json

    from distributed import LocalCluster
    from typer.testing import CliRunner

    from nndoctor.cli import app

    src, tgt = _tables(8, n=600)
    glob_src, dir_tgt = _write_parquet(tmp_path, src, tgt)
    args = ["shift", "test", "--source", glob_src, "--target", dir_tgt, "--json"]
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        out = CliRunner().invoke(
            app, [*args, "--engine", "dask", "--scheduler", cluster.scheduler_address]
        )
        ran = set(cluster.scheduler.task_prefixes)
        # the same through the environment variable
        env = {"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address}
        before = cluster.scheduler.transition_counter
        by_env = CliRunner().invoke(app, [*args, "--engine", "dask"], env=env)
        n_transitions = cluster.scheduler.transition_counter - before
    assert by_env.exit_code == 0, by_env.output
    assert (
        json.loads(by_env.stdout)["features"]["features"][1]
        == json.loads(out.stdout)["features"]["features"][1]
    )
    assert n_transitions > 0  # that run's tasks went through the cluster's scheduler too
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    want = feature_test(src, tgt, random_state=0)
    assert got["features"]["features"][1]["statistic"] == want.features[1].statistic
    assert {"summarize", "merge"} <= ran  # the partition summaries ran on that cluster


def test_cli_engine_dask_names_the_file_and_column_whose_schema_differs(tmp_path):
    from typer.testing import CliRunner

    from nndoctor.cli import app

    src, tgt = _tables(9, n=300)
    glob_src, dir_tgt = _write_parquet(tmp_path, src, tgt)
    bad = src.iloc[:50].assign(b=["text"] * 50)
    bad.to_parquet(tmp_path / "src" / "part9.parquet")
    args = ["shift", "test", "--source", glob_src, "--target", dir_tgt, "--engine", "dask"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 3  # bad data
    assert "column 'b' holds text in file" in out.stderr
    assert "part9.parquet" in out.stderr
    bad.drop(columns="b").to_parquet(tmp_path / "src" / "part9.parquet")
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 3
    assert "part9.parquet" in out.stderr
    assert "missing: ['b']" in out.stderr


def test_bad_values_in_a_partition_raise_the_in_memory_errors():
    from nndoctor.exceptions import DataValidationError

    src, tgt = _tables(10, n=300)
    dx = dd.from_pandas(src, npartitions=3)
    with pytest.raises(DataValidationError, match=r"column 'a' of X holds .* missing"):
        feature_test(dx, tgt, missing="raise")
    src.loc[250, "b"] = np.inf
    with pytest.raises(DataValidationError, match="'b'"):
        feature_test(dd.from_pandas(src, npartitions=3), tgt)
