"""Error messages name the user's tables: ``names=`` on the shift entry points, the file names on
the command line (passed down to the checks, not rewritten into the messages afterwards)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift import (
    ImportanceWeighter,
    classifier_test,
    compare_samples,
    diagnose,
    feature_test,
    mmd_test,
)

runner = CliRunner()
NAMES = ("the training set", "the live traffic")


def _frames(n: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    tgt = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    return src, tgt


def test_column_literally_named_X_is_not_rewritten(tmp_path: Path) -> None:
    """Regression: the old regex turned "column 'X'" into "column 'the source table (...)'"."""
    rng = np.random.default_rng(1)
    src = pd.DataFrame({"X": rng.normal(size=50), "Y": rng.normal(size=50)})
    tgt = src.assign(X=np.inf)
    s, t = tmp_path / "src.csv", tmp_path / "tgt.csv"
    src.to_csv(s, index=False)
    tgt.to_csv(t, index=False)
    for method in ("auto", "c2st"):
        res = runner.invoke(app, ["shift", "test", "--source", str(s), "--target", str(t),
                                  "--method", method])  # fmt: skip
        assert res.exit_code == 3, res.output
        assert f"column 'X' of the target table ({t}) holds 50 infinite value(s)" in res.stderr
        assert "the source table" not in res.stderr


def test_each_command_names_both_files_in_a_mismatch(tmp_path: Path) -> None:
    src, tgt = _frames()
    src = src.assign(y=np.arange(60) % 2)
    s, t = tmp_path / "src.csv", tmp_path / "tgt.csv"
    src.to_csv(s, index=False)
    tgt.rename(columns={"b": "c"}).assign(y=np.arange(60) % 2).to_csv(t, index=False)
    out = tmp_path / "w.csv"
    for command in (
        ["shift", "test"],
        ["shift", "diagnose", "--label", "y"],
        ["shift", "weights", "--out", str(out)],
    ):
        res = runner.invoke(app, [*command, "--source", str(s), "--target", str(t)])
        assert res.exit_code == 3, (command, res.output)
        assert f"the source table ({s})" in res.stderr, command
        assert f"the target table ({t})" in res.stderr, command


def _bad_pair(tmp_path: Path, value: float) -> tuple[Path, Path, Path]:
    """src.csv and tgt.csv with a label y, the target's column b set to ``value``; where
    `shift weights` would write."""
    src, tgt = _frames()
    s, t = tmp_path / "src.csv", tmp_path / "tgt.csv"
    src.assign(y=np.arange(60) % 2).to_csv(s, index=False)
    tgt.assign(b=value, y=np.arange(60) % 2).to_csv(t, index=False)
    return s, t, tmp_path / "w.csv"


def test_each_command_names_the_file_whose_values_are_bad(tmp_path: Path) -> None:
    s, t, out = _bad_pair(tmp_path, np.inf)
    for command in (
        ["shift", "test", "--method", "mmd"],
        ["shift", "diagnose", "--label", "y"],
        ["shift", "weights", "--exclude", "y", "--out", str(out)],
    ):
        res = runner.invoke(app, [*command, "--source", str(s), "--target", str(t)])
        assert res.exit_code == 3, (command, res.output)
        assert f"the target table ({t}) holds 60 NaN or infinite value(s)" in res.stderr, command


def test_weights_and_diagnose_name_the_column_that_is_all_missing(tmp_path: Path) -> None:
    """Regression: a column left empty in the target stopped `shift weights` and `shift diagnose`
    with only a count of NaN values, not which column held them; no weights file is written."""
    s, t, out = _bad_pair(tmp_path, np.nan)
    for command in (
        ["shift", "diagnose", "--label", "y"],
        ["shift", "weights", "--label", "y", "--out", str(out)],
    ):
        res = runner.invoke(app, [*command, "--source", str(s), "--target", str(t)])
        assert res.exit_code == 3, (command, res.output)
        assert "holds 60 NaN or infinite value(s) in column(s) 'b';" in res.stderr, command
        assert "Traceback" not in res.output, command
    assert not out.exists()


def test_python_api_uses_the_names_it_is_given() -> None:
    src, tgt = _frames()
    bad = tgt.assign(b=np.inf)
    a, b = NAMES
    cases = [
        (lambda n: feature_test(src, bad, names=n), "column 'b' of {b} holds 60 infinite"),
        (lambda n: compare_samples(src, bad, names=n), "column 'b' of {b} holds 60 infinite"),
        (lambda n: mmd_test(src, bad, names=n), "{b} holds 60 NaN or infinite"),
        (lambda n: classifier_test(src, bad, names=n), "column 'b' of {b} holds 60 infinite"),
        (
            lambda n: ImportanceWeighter(n_splits=2).fit(src, bad, names=n),
            "{b} holds 60 NaN or infinite",
        ),
        (
            lambda n: diagnose(src, np.arange(60) % 2, bad, names=n),
            "{b} holds 60 NaN or infinite",
        ),
    ]
    for call, message in cases:
        with pytest.raises(DataValidationError) as named:
            call(NAMES)
        assert message.format(a=a, b=b) in str(named.value)
    # without names, the library's own words (the arguments' names)
    defaults = ["Y", "Y", "Y", "Y", "X_target", "target_X"]
    for (call, message), word in zip(cases, defaults, strict=True):
        with pytest.raises(DataValidationError) as plain:
            call(None)
        assert message.format(a="X", b=word) in str(plain.value)


def test_names_reach_shape_and_column_checks() -> None:
    src, tgt = _frames()
    a, b = NAMES
    with pytest.raises(DataValidationError, match=f"{b} has 3 features but {a} has 2"):
        classifier_test(src.to_numpy(), np.zeros((10, 3)), names=NAMES)
    with pytest.raises(DataValidationError, match=f"{b} has 3 row"):
        ImportanceWeighter(n_splits=2).fit(src, tgt.iloc[:3], names=NAMES)
    with pytest.raises(DataValidationError, match=f"{a} and {b} have different columns"):
        compare_samples(src, tgt.rename(columns={"b": "c"}), names=NAMES)
    with pytest.raises(InvalidParameterError, match=f"label column 'y' is not in {a}"):
        compare_samples(src, tgt, label="y", names=NAMES)
    nan = src.assign(a=np.nan)
    with pytest.raises(DataValidationError, match=f"column 'a' of {a} holds 60 missing"):
        compare_samples(nan, tgt, method="c2st", missing="raise", names=NAMES)
    with pytest.raises(InvalidParameterError, match="names must be a pair"):
        compare_samples(src, tgt, names=("only one",))  # type: ignore[arg-type]


def test_diagnose_names_the_label_column_of_each_file(tmp_path: Path) -> None:
    src, tgt = _frames()
    s, t = tmp_path / "src.csv", tmp_path / "tgt.csv"
    src.assign(y=np.where(np.arange(60) == 5, np.nan, np.arange(60) % 2)).to_csv(s, index=False)
    tgt.assign(y=np.arange(60) % 2).to_csv(t, index=False)
    res = runner.invoke(app, ["shift", "diagnose", "--source", str(s), "--target", str(t),
                              "--label", "y"])  # fmt: skip
    assert res.exit_code == 3, res.output
    assert f"the label column of the source table ({s}) holds missing labels" in res.stderr
    src.assign(y=np.arange(60) % 2).to_csv(s, index=False)
    tgt.assign(y=np.arange(60) % 3).to_csv(t, index=False)
    res = runner.invoke(app, ["shift", "diagnose", "--source", str(s), "--target", str(t),
                              "--label", "y"])  # fmt: skip
    assert res.exit_code == 3, res.output
    assert (
        f"the label column of the target table ({t}) holds class(es) 2 that never occur in "
        f"the label column of the source table ({s})"
    ) in res.stderr


def test_checkup_shift_stage_names_the_files(tmp_path: Path) -> None:
    from nndoctor.checkup import CheckupContext
    from nndoctor.checkup._shift import shift_stage

    src, tgt = _frames()
    s, t = tmp_path / "src.csv", tmp_path / "tgt.csv"
    src.assign(y=np.arange(60) % 2).to_csv(s, index=False)
    tgt.assign(a=np.inf, y=np.arange(60) % 2).to_csv(t, index=False)
    ctx = CheckupContext(source=str(s), target=str(t), label="y")
    with pytest.raises(DataValidationError) as err:
        shift_stage(ctx)
    assert f"column 'a' of the target table ({t}) holds 60 infinite" in str(err.value)
