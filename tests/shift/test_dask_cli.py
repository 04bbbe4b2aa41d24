"""The shift commands' engine: --engine auto|dask|in-memory, --scheduler, the LocalCluster."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor._cli import _engine
from nndoctor.cli import app
from nndoctor.exceptions import InvalidParameterError


def _tables(seed: int, n: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    src = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
    tgt = pd.DataFrame({"a": rng.normal(0.5, 1, n), "c": rng.choice(list("xyz"), n)})
    return src, tgt


def _write(tmp_path, frame: pd.DataFrame, name: str, files: int = 3) -> str:
    folder = tmp_path / name
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[rows].to_parquet(folder / f"part{i}.parquet")
    return str(folder)


def test_auto_picks_dask_for_directories_globs_big_files_and_a_scheduler(tmp_path, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    src, _ = _tables(0)
    folder = _write(tmp_path, src, "src")
    one = f"{folder}/part0.parquet"
    csv = tmp_path / "t.csv"
    src.to_csv(csv, index=False)
    choose = _engine.choose_engine
    assert choose("auto", None, [("--source", one), ("--target", one)]).engine == "in-memory"
    by_dir = choose("auto", None, [("--source", one), ("--target", folder)])
    assert (by_dir.engine, by_dir.address) == ("dask", None)
    assert by_dir.reason == f"--target {folder} names several files"
    assert choose("auto", None, [("--source", f"{folder}/*.parquet")]).engine == "dask"
    # the size rule: the Parquet files of one input against the threshold
    size = _engine.input_bytes(folder)
    assert size == sum(p.stat().st_size for p in (tmp_path / "src").iterdir())
    assert _engine.input_bytes(f"{folder}/*.parquet") == size
    assert _engine.input_bytes(csv) == 0  # the Dask engine reads Parquet only
    big = choose("auto", None, [("--source", one)], threshold=_engine.input_bytes(one) - 1)
    assert big.engine == "dask"
    assert "GiB of Parquet (more than" in big.reason
    assert choose("auto", None, [("--source", one)], threshold=_engine.input_bytes(one)).engine == (
        "in-memory"
    )
    assert choose("auto", None, [("--source", str(csv))], threshold=0).engine == "in-memory"
    # a scheduler: given, it implies Dask; from the environment, it is only the address
    by_option = choose("auto", "tcp://h:1", [("--source", one)])
    assert (by_option.engine, by_option.address) == ("dask", "tcp://h:1")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://env:2")
    assert choose("auto", None, [("--source", one)]).engine == "in-memory"
    assert choose("dask", None, [("--source", one)]).address == "tcp://env:2"
    assert choose("dask", "tcp://h:1", [("--source", one)]).address == "tcp://h:1"
    with pytest.raises(InvalidParameterError, match="--scheduler needs the Dask engine"):
        choose("in-memory", "tcp://h:1", [("--source", one)])
    with pytest.raises(InvalidParameterError, match="auto, dask, in-memory"):
        choose("spark", None, [("--source", one)])


def test_local_cluster_is_sized_to_the_machine(monkeypatch):
    import os

    monkeypatch.undo()  # the real options, not the tests' one in-process worker (conftest)
    got = _engine.local_cluster_options()
    assert got["n_workers"] == len(os.sched_getaffinity(0))
    assert got["threads_per_worker"] == 1
    assert got["processes"] is True
    assert got["memory_limit"] == "auto"  # distributed divides the machine's memory by workers


def test_cli_auto_runs_a_directory_on_dask_and_one_small_file_in_memory(tmp_path):
    src, tgt = _tables(1)
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, tgt, "tgt")
    args = ["shift", "test", "--source", s_dir, "--target", t_dir, "--json"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["features"]["engine"] == "dask"
    assert (got["n_source"], got["n_target"]) == (300, 300)
    assert "using the Dask engine: --source" in out.stderr
    one = [
        "shift",
        "test",
        "--source",
        f"{s_dir}/part0.parquet",
        "--target",
        f"{t_dir}/part0.parquet",
        "--json",
    ]
    mem = CliRunner().invoke(app, one)
    assert mem.exit_code == 0, mem.output
    assert json.loads(mem.stdout)["features"]["engine"] == "in-memory"
    assert "Dask" not in mem.stderr


def test_cli_auto_threshold_moves_one_file_to_dask(tmp_path, monkeypatch):
    src, tgt = _tables(2)
    s_dir, t_dir = _write(tmp_path, src, "src", 1), _write(tmp_path, tgt, "tgt", 1)
    args = ["shift", "test", "--source", f"{s_dir}/part0.parquet"]
    args += ["--target", f"{t_dir}/part0.parquet", "--json", "--permutations", "50"]
    monkeypatch.setattr(_engine, "AUTO_DASK_BYTES", 100)
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["features"]["engine"] == "dask"
    assert "GiB of Parquet (more than" in out.stderr
    forced = CliRunner().invoke(app, [*args, "--engine", "in-memory"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["features"]["engine"] == "in-memory"


def test_dask_session_closes_its_local_cluster_also_on_error():
    from distributed import default_client

    choice = _engine.EngineChoice("dask")
    with _engine.dask_session(choice, "t") as client:
        cluster = client.cluster
        assert default_client() is client
        assert client.submit(sum, [1, 2]).result() == 3
    assert cluster.status.name == "closed"
    seen = []

    def fail() -> None:
        with _engine.dask_session(choice, "t") as client:
            seen.append(client)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail()
    client, cluster = seen[0], seen[0].cluster
    assert cluster.status.name == "closed"
    assert client.status == "closed"
    with pytest.raises(ValueError, match="No clients found"):
        default_client()


def test_partition_counts_count_the_partitions_read(tmp_path):
    import dask.dataframe as dd

    from nndoctor.shift import feature_test

    src, tgt = _tables(3)
    s_dir, t_dir = _write(tmp_path, src, "src", 3), _write(tmp_path, tgt, "tgt", 4)
    with _engine.dask_session(_engine.EngineChoice("dask"), "t") as client:
        base, total = _engine.partition_counts(client)
        assert (base, total) == (0, 0)
        feature_test(dd.read_parquet(s_dir), dd.read_parquet(t_dir), random_state=0)
        done, total = _engine.partition_counts(client)
    # 3 + 4 files, each read twice (the summaries, then the counts on the KS grid), none pending
    assert (done, total) == (14, 14)


def test_cli_dask_exclude_drops_columns_and_include_is_refused(tmp_path):
    src, tgt = _tables(4)
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, tgt, "tgt")
    args = ["shift", "test", "--source", s_dir, "--target", t_dir, "--json"]
    out = CliRunner().invoke(app, [*args, "--exclude", "c"])
    assert out.exit_code == 0, out.output
    assert [f["name"] for f in json.loads(out.stdout)["features"]["features"]] == ["a"]
    bad = CliRunner().invoke(app, [*args, "--exclude", "nope"])
    assert bad.exit_code == 2
    assert "--exclude column 'nope' is not in the source table" in bad.stderr
    inc = CliRunner().invoke(app, [*args, "--include", "a"])
    assert inc.exit_code == 2
    assert "--include is not supported with the Dask engine" in inc.stderr


def test_cli_dask_leaves_out_identifiers_and_dates_as_in_memory(tmp_path):
    """A row id (restarting in the target) and a date column are not features on Dask either:
    the same features are tested as in memory, and each left-out column is told on stderr."""
    src, tgt = _tables(5)
    for frame in (src, tgt):
        frame.insert(0, "row_id", np.arange(len(frame)))
        frame["day"] = pd.date_range("2024-01-01", periods=len(frame), freq="h").astype(str)
        frame["count"] = np.arange(len(frame)) % 7  # integers, repeated: a feature
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, tgt, "tgt")
    s_csv, t_csv = tmp_path / "s.csv", tmp_path / "t.csv"
    src.to_csv(s_csv, index=False)
    tgt.to_csv(t_csv, index=False)
    tested = {}
    for engine, (s, t) in {"dask": (s_dir, t_dir), "in-memory": (s_csv, t_csv)}.items():
        args = ["shift", "test", "--source", str(s), "--target", str(t), "--json"]
        out = CliRunner().invoke(app, [*args, "--engine", engine])
        assert out.exit_code == 0, out.output
        tested[engine] = sorted(f["name"] for f in json.loads(out.stdout)["features"]["features"])
        assert "'row_id' looks like a row identifier" in out.stderr
        assert "'day' holds dates or times" in out.stderr
    assert tested["dask"] == tested["in-memory"] == ["a", "c", "count"]


def _probs(seed: int, n: int, prior: list[float]) -> pd.DataFrame:
    """Class probabilities of a fixed confusable classifier under a class prior, with labels."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=prior)
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    frame = pd.DataFrame(p, columns=["cat", "dog", "emu"])
    frame["y"] = np.array(["cat", "dog", "emu"])[y]
    return frame


def test_cli_labels_on_dask_equals_in_memory(tmp_path):
    src = _probs(5, 900, [0.5, 0.3, 0.2])
    tgt = _probs(6, 600, [0.2, 0.3, 0.5]).drop(columns="y")
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, tgt, "tgt")
    src.to_parquet(tmp_path / "s.parquet")
    tgt.to_parquet(tmp_path / "t.parquet")
    common = ["shift", "labels", "--label", "y", "--method", "bbse-hard", "--json"]
    common += ["--n-bootstrap", "0"]
    mem = CliRunner().invoke(
        app, [*common, "--source-probs", str(tmp_path / "s.parquet"), "--target-probs",
              str(tmp_path / "t.parquet")],
    )  # fmt: skip
    assert mem.exit_code == 0, mem.output
    out = CliRunner().invoke(app, [*common, "--source-probs", s_dir, "--target-probs", t_dir])
    assert out.exit_code == 0, out.output
    got, want = json.loads(out.stdout), json.loads(mem.stdout)
    # BBSE-hard reads counts only: the same to the last digit
    assert got["target_prior"] == want["target_prior"]
    assert got["source_prior"] == want["source_prior"]
    assert got["class_names"] == ["cat", "dog", "emu"]
    assert "using the Dask engine" in out.stderr
    assert got["target_prior"][2] > 0.4  # the prior did move towards emu
    # the bootstrap runs on Dask too (Poisson weights per partition): finite intervals
    boot = CliRunner().invoke(
        app, [*common[:-1], "20", "--source-probs", s_dir, "--target-probs", t_dir]
    )
    assert boot.exit_code == 0, boot.output
    booted = json.loads(boot.stdout)
    assert booted["n_bootstrap"] == 20
    assert np.all(np.isfinite(booted["ci_low"]))
    assert np.all(np.asarray(booted["ci_low"]) <= np.asarray(booted["ci_high"]))
    refused = CliRunner().invoke(
        app, [*common, "--source-probs", s_dir, "--target-probs", t_dir,
              "--adjusted-out", str(tmp_path / "adj.parquet")],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "--adjusted-out is not supported with the Dask engine" in refused.stderr


@pytest.mark.parametrize("command", ["test", "labels", "diagnose"])
def test_every_shift_command_names_a_bad_partition_and_an_empty_glob(tmp_path, command):
    src = _probs(7, 300, [0.5, 0.3, 0.2])
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, src, "tgt")
    opts = {
        "test": ["--source", "--target"],
        "labels": ["--source-probs", "--target-probs"],
        "diagnose": ["--source", "--target"],
    }[command]
    extra = [] if command == "test" else ["--label", "y"]
    # a file whose column holds text where the others hold numbers
    src.iloc[:20].assign(dog=["woof"] * 20).to_parquet(tmp_path / "tgt" / "part7.parquet")
    args = ["shift", command, opts[0], s_dir, opts[1], t_dir, *extra]
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 3, bad.output
    assert "column 'dog' holds text in file" in bad.stderr
    assert "part7.parquet" in bad.stderr
    # a glob that matches nothing
    empty = ["shift", command, opts[0], str(tmp_path / "none" / "*.parquet"), opts[1], s_dir]
    out = CliRunner().invoke(app, [*empty, *extra])
    assert out.exit_code == 2, out.output
    assert "matches no Parquet file" in out.stderr
    assert str(tmp_path / "none") in out.stderr


def test_cli_diagnose_on_dask_samples_and_says_so(tmp_path):
    rng = np.random.default_rng(8)
    n = 1200
    src = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    src["city"] = rng.choice(["x", "y"], n)
    src["y"] = (src["a"] + rng.normal(0, 0.5, n) > 0).astype(int)
    tgt = pd.DataFrame({"a": rng.normal(1.0, 1, n), "b": rng.normal(size=n)})
    tgt["city"] = rng.choice(["x", "y", "z"], n)  # a category the source lacks
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, tgt, "tgt")
    args = ["shift", "diagnose", "--source", s_dir, "--target", t_dir, "--label", "y"]
    out = CliRunner().invoke(app, [*args, "--json", "--sample-size", "500"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["sampled_from"] == [1200, 1200]  # a bounded sample of each table, stated
    assert got["n_source"] < 1200
    assert got["kind"] == "covariate"  # a moved; labels follow a through P(y|x)
    assert "using the Dask engine" in out.stderr
    whole = CliRunner().invoke(app, [*args, "--json", "--sample-size", "5000"])
    assert whole.exit_code == 0, whole.output
    taken = json.loads(whole.stdout)  # the tables fit in the sample: taken whole
    assert (taken["n_source"], taken["sampled_from"]) == (1200, [1200, 1200])
    # the Dask path one-hot encodes text with the categories of both tables, as in memory
    src.to_parquet(tmp_path / "s.parquet")
    tgt.to_parquet(tmp_path / "t.parquet")
    mem = CliRunner().invoke(
        app, ["shift", "diagnose", "--source", str(tmp_path / "s.parquet"), "--target",
              str(tmp_path / "t.parquet"), "--label", "y", "--json"],
    )  # fmt: skip
    assert mem.exit_code == 0, mem.output
    assert json.loads(mem.stdout)["kind"] == taken["kind"]


def test_cli_sample_size_default_is_the_librarys():
    import inspect

    from nndoctor._cli.shift_diagnose import shift_diagnose_cmd
    from nndoctor.shift._engines import DASK_SAMPLE_SIZE

    default = inspect.signature(shift_diagnose_cmd).parameters["sample_size"].default
    assert default == DASK_SAMPLE_SIZE


def test_cli_dask_passes_method_and_model_through_as_in_memory(tmp_path):
    src, tgt = _tables(2)
    src["b"], tgt["b"] = src["a"] * 0.5, tgt["a"] * 0.5
    s_dir, t_dir = _write(tmp_path, src, "src"), _write(tmp_path, tgt, "tgt")
    src.to_parquet(tmp_path / "src.parquet")
    tgt.to_parquet(tmp_path / "tgt.parquet")
    factory = tmp_path / "net.py"
    factory.write_text(
        "import torch\n\ndef build():\n    torch.manual_seed(0)\n    return torch.nn.Linear(2, 3)\n"
    )
    extra = ["--model", f"{factory}:build", "--method", "bbsd", "--json"]
    dask_args = ["shift", "test", "--source", f"{s_dir}/*.parquet", "--target", t_dir]
    out = CliRunner().invoke(app, [*dask_args, *extra, "--engine", "dask"])
    assert out.exit_code == 0, out.output
    mem_args = ["shift", "test", "--source", str(tmp_path / "src.parquet")]
    mem_args += ["--target", str(tmp_path / "tgt.parquet"), "--engine", "in-memory"]
    mem = CliRunner().invoke(app, [*mem_args, *extra])
    assert mem.exit_code == 0, mem.output
    got, want = json.loads(out.stdout), json.loads(mem.stdout)
    assert got["methods"] == want["methods"] == ["bbsd"]
    assert got["drift_detected"] == want["drift_detected"] is True
    assert (got["n_source"], got["n_target"]) == (300, 300)
    # the model ran on the partitions: the predicted-class counts and chi-squared test exact
    assert got["bbsd"]["engine"] == "dask"
    for key in ("source_counts", "target_counts", "chi2_statistic", "chi2_pvalue"):
        assert got["bbsd"][key] == want["bbsd"][key], key


@pytest.mark.parametrize("flags", [["--engine", "dask"], ["--scheduler", "tcp://nowhere:8786"]])
def test_the_dask_engine_on_a_csv_is_a_usage_error_that_says_what_to_do(tmp_path, flags):
    src, tgt = _tables(5)
    s_csv, t_csv = tmp_path / "src.csv", tmp_path / "tgt.csv"
    src.to_csv(s_csv, index=False)
    tgt.to_csv(t_csv, index=False)
    args = ["shift", "test", "--source", str(s_csv), "--target", str(t_csv), *flags]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    assert "reads Parquet" in out.stderr
    assert "is a .csv file; leave --engine at auto (or in-memory)" in out.stderr
    assert out.stdout == ""
