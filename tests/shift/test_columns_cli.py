"""Which columns are features (issue 14, item 6): ``--exclude`` and ``--include`` on every shift
command, identifiers and dates left out by default with a note, high-cardinality text capped,
the label never a feature of ``shift weights``, and a missing-label error that helps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A random (i.i.d.) split of scikit-learn's wine table, as a user exports it: sequential
    row ids, a timestamp per row, a free-text column and text labels."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    df = data.data.rename(columns=lambda c: c.replace("/", "_"))
    df.insert(0, "id", np.arange(1000, 1000 + len(df)))
    df["ts"] = pd.date_range("2024-01-01", periods=len(df), freq="37min").astype(str)
    df["note"] = [f"visit {i}" for i in range(len(df))]
    df["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[data.target]
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(df))
    # the ids and times are in split order: source the first rows, target the later ones
    src, tgt = df.iloc[np.sort(idx[:100])].copy(), df.iloc[np.sort(idx[100:])].copy()
    src["id"], tgt["id"] = np.arange(100), np.arange(100, 100 + len(tgt))
    d = tmp_path_factory.mktemp("wine")
    src.to_csv(d / "s.csv", index=False)
    tgt.to_csv(d / "t.csv", index=False)
    return str(d / "s.csv"), str(d / "t.csv")


def _run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_identifiers_and_dates_are_left_out_with_a_note(wine: tuple[str, str]) -> None:
    s, t = wine
    code, out, err = _run("shift", "test", "--source", s, "--target", t, "--label", "cultivar",
                          "--method", "ks", "--json")  # fmt: skip
    assert code == 0, err
    tested = {f["name"] for f in json.loads(out)["features"]["features"]}
    assert {"id", "ts", "note", "cultivar"}.isdisjoint(tested)
    assert "alcohol" in tested
    for column in ("id", "ts", "note"):
        assert f"column '{column}'" in err
    assert "--include" in err
    # forced back in, and explicit exclusions (repeatable and comma-separated)
    code, out, err = _run("shift", "test", "--source", s, "--target", t, "--label", "cultivar",
                          "--method", "ks", "--json", "--include", "id",
                          "--exclude", "alcohol,malic_acid", "--exclude", "ash")  # fmt: skip
    assert code == 0, err
    tested = {f["name"] for f in json.loads(out)["features"]["features"]}
    assert "id" in tested
    assert {"alcohol", "malic_acid", "ash"}.isdisjoint(tested)


def test_sequential_ids_no_longer_make_an_iid_split_a_shift(wine: tuple[str, str]) -> None:
    """The id column told source from target perfectly (AUC 1: "the most telling feature");
    left out, the i.i.d. split is diagnosed as no shift."""
    s, t = wine
    code, out, err = _run("shift", "diagnose", "--source", s, "--target", t,
                          "--label", "cultivar", "--json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["kind"] == "none"
    assert "id" not in payload["evidence"][0]["detail"].split(": ")[-1].split(", ")


def test_every_shift_command_takes_exclude(wine: tuple[str, str], tmp_path: Path) -> None:
    s, t = wine
    for args in (
        ["test", "--method", "ks"],
        ["diagnose", "--label", "cultivar"],
        ["weights", "--label", "cultivar", "--out", str(tmp_path / "w.csv")],
    ):
        code, _, err = _run("shift", *args, "--source", s, "--target", t,
                            "--exclude", "not_a_column")  # fmt: skip
        assert code == 2, err
        assert "not_a_column" in err


def test_weights_leave_the_label_out(tmp_path: Path) -> None:
    """Pure label shift with features independent of the label: with the label column as a
    feature the weights collapse; left out (--label), they stay near 1."""
    rng = np.random.default_rng(0)
    for name, rate, n in (("s", 0.2, 400), ("t", 0.8, 400)):
        pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"]).assign(
            y=(rng.random(n) < rate).astype(int)
        ).to_csv(tmp_path / f"{name}.csv", index=False)
    code, out, err = _run("shift", "weights", "--source", str(tmp_path / "s.csv"),
                          "--target", str(tmp_path / "t.csv"), "--label", "y",
                          "--out", str(tmp_path / "w.csv"), "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["ess_ratio"] > 0.9
    written = pd.read_csv(tmp_path / "w.csv")
    assert list(written.columns) == ["a", "b", "y", "weight"]


def test_high_cardinality_text_is_capped() -> None:
    from nndoctor._io import MAX_CATEGORIES, select_features

    rng = np.random.default_rng(0)
    shops = np.array([f"shop {i}" for i in range(400)])
    frame = pd.DataFrame({"shop": shops[rng.integers(0, 400, 2000)], "x": rng.normal(size=2000)})
    (out,), features, notes = select_features([frame])
    assert features == ["shop", "x"]
    assert out["shop"].nunique() == MAX_CATEGORIES + 1  # the most frequent, and "other"
    assert (out["shop"] == "other").any()
    assert any(n.startswith("column 'shop' has 39") for n in notes), notes


def test_missing_label_error_names_the_closest_column(wine: tuple[str, str]) -> None:
    s, t = wine
    code, out, err = _run("shift", "diagnose", "--source", s, "--target", t, "--label", "Cultivar")
    assert code == 2
    assert out == ""
    assert "did you mean 'cultivar'?" in err
    assert "17 columns" in err


def test_piped_tables_wrap_instead_of_truncating(
    wine: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped (not a terminal, no COLUMNS) the table was squeezed into 80 columns and long names
    cut to "nonflavanoid_phe…"; now it is wide and a long word folds, whole."""
    monkeypatch.delenv("COLUMNS", raising=False)
    s, t = wine
    code, out, err = _run("shift", "test", "--source", s, "--target", t, "--label", "cultivar",
                          "--method", "ks")  # fmt: skip
    assert code == 0, err
    assert "…" not in out
    assert "nonflavanoid_phenols" in out
    assert max(len(line) for line in out.splitlines()) > 80


@pytest.mark.parametrize(("source_labels", "target_labels"), [("int", "text"), ("text", "int")])
def test_text_labels_against_integer_labels_are_one_line_errors(
    tmp_path: Path, source_labels: str, target_labels: str
) -> None:
    """Integer labels in one table and text labels in the other were a raw traceback."""
    rng = np.random.default_rng(0)
    names = np.array(["benign", "malignant"])
    for side, kind, n in (("s", source_labels, 120), ("t", target_labels, 60)):
        y = rng.integers(0, 2, n)
        pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"]).assign(
            y=names[y] if kind == "text" else y
        ).to_csv(tmp_path / f"{side}.csv", index=False)
    code, out, err = _run("shift", "diagnose", "--source", str(tmp_path / "s.csv"),
                          "--target", str(tmp_path / "t.csv"), "--label", "y")  # fmt: skip
    assert code == 3, err
    assert out == ""
    assert err.startswith("nndoctor: error: the label column of the target table")
    assert "pass the same label values in both tables" in err
    assert len(err.strip().splitlines()) == 1


def test_the_checkup_and_the_shift_commands_leave_out_the_same_columns(tmp_path: Path) -> None:
    """One rule (nndoctor._io.left_out_columns): the checkup judged the source alone, the shift
    commands the pooled tables; ids that restart in the target were a feature to the shift
    commands, and a column unique in the source only was an identifier to the checkup."""
    from nndoctor.checkup._inputs import check_user_inputs

    rng = np.random.default_rng(0)

    def table(n: int, row: np.ndarray, code: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {"row": row, "code": code, "x": rng.normal(size=n), "y": rng.integers(0, 2, n)}
        )

    # "row": ids restarting at 0 in the target (unique in each table, not in both together);
    # "code": different on every source row, repeated in the target: a feature
    src = table(60, np.arange(60), np.arange(60) * 7)
    tgt = table(50, np.arange(50), np.repeat(np.arange(25), 2))
    s, t = tmp_path / "s.csv", tmp_path / "t.csv"
    src.to_csv(s, index=False)
    tgt.to_csv(t, index=False)
    code, out, err = _run("shift", "test", "--source", str(s), "--target", str(t),
                          "--label", "y", "--method", "ks", "--json")  # fmt: skip
    assert code == 0, err
    tested = {f["name"] for f in json.loads(out)["features"]["features"]}
    assert tested == {"code", "x"}
    assert "column 'row' looks like a row identifier" in err
    data = check_user_inputs(source=str(s), target=str(t), label="y")
    assert data is not None
    assert set(data.features) == tested
    assert data.identifiers == ("row",)


def test_timestamps_with_two_utc_offsets_are_dates(tmp_path: Path) -> None:
    """river's WaterFlow export: local times written with their UTC offset, +01:00 in winter and
    +02:00 in summer. pandas refuses to parse mixed offsets without ``utc=True`` and the
    ValueError escaped as a traceback (exit 1); the column is dates, left out with a note."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2022-03-20", periods=60, freq="12h", tz="Europe/Berlin")
    df = pd.DataFrame({"Time": times.astype(str), "y": rng.normal(100.0, 5.0, size=60)})
    assert df["Time"].str[-6:].nunique() == 2  # both offsets are in the table
    df.iloc[::2].to_csv(tmp_path / "s.csv", index=False)
    df.iloc[1::2].to_csv(tmp_path / "t.csv", index=False)
    s, t = str(tmp_path / "s.csv"), str(tmp_path / "t.csv")
    code, out, err = _run("shift", "test", "--source", s, "--target", t, "--method", "ks", "--json")
    assert code == 0, err
    assert "column 'Time'" in err
    assert {f["name"] for f in json.loads(out)["features"]["features"]} == {"y"}


def test_shift_test_takes_a_target_without_the_label_column(
    wine: tuple[str, str], tmp_path: Path
) -> None:
    """Deployment data has no labels: ``shift test --label`` stopped with "label column ... is
    not in the target table" (exit 2) where diagnose, weights and the checkup accept it. The
    label is left out of the source; a target without it is tested as it is."""
    s, t = wine
    unlabeled = tmp_path / "t_unlabeled.csv"
    pd.read_csv(t).drop(columns="cultivar").to_csv(unlabeled, index=False)
    args = ("--label", "cultivar", "--method", "ks", "--json")
    runs = [_run("shift", "test", "--source", s, "--target", x, *args) for x in (t, str(unlabeled))]
    for code, _, err in runs:
        assert code == 0, err
    labeled, unlabeled_out = (json.loads(out)["features"] for _, out, _ in runs)
    assert labeled == unlabeled_out
    assert "cultivar" not in {f["name"] for f in labeled["features"]}
    # the source must still have it: a mistyped label is a usage error
    code, _, err = _run("shift", "test", "--source", str(unlabeled), "--target", t,
                        "--label", "cultivar", "--method", "ks")  # fmt: skip
    assert code == 2
    assert "label column 'cultivar'" in err
