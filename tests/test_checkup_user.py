"""The checkup on the user's own model and tables (issue 14): inputs checked before any work,
the model trained on standardized inputs, only what the user gave judged, never green on no
evidence, the same seed giving the same bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app

runner = CliRunner()

FEATURES = ["area", "radius", "texture", "smooth"]
SCALES = np.array([1000.0, 10.0, 20.0, 0.1])  # raw columns in very different units


def _table(rng: np.random.Generator, n: int) -> pd.DataFrame:
    z = rng.normal(size=(n, len(FEATURES)))
    label = np.where(z[:, 0] + 0.5 * z[:, 1] + 0.3 * rng.normal(size=n) > 0, "malignant", "benign")
    frame = pd.DataFrame(z * SCALES + 3 * SCALES, columns=FEATURES)
    frame["diagnosis"] = label
    return frame


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user_checkup")
    rng = np.random.default_rng(0)
    src, tgt = _table(rng, 120), _table(rng, 60)
    src.to_csv(root / "s.csv", index=False)
    tgt.to_csv(root / "t.csv", index=False)
    std = src[FEATURES].mean(), src[FEATURES].std(ddof=0)
    src.assign(**{c: (src[c] - std[0][c]) / std[1][c] for c in FEATURES}).to_csv(
        root / "s_std.csv", index=False
    )
    tgt.iloc[:1].to_csv(root / "t1.csv", index=False)
    src.iloc[:1].to_csv(root / "s1.csv", index=False)
    src.assign(diagnosis=(src["diagnosis"] == "malignant").astype(int)).to_csv(
        root / "s_int.csv", index=False
    )
    tgt.assign(diagnosis=tgt["diagnosis"].where(tgt.index > 3, "cyst")).to_csv(
        root / "t_unseen.csv", index=False
    )
    tgt.assign(diagnosis=tgt["diagnosis"].str.capitalize()).to_csv(root / "t_case.csv", index=False)
    pool = _table(rng, 240)
    cov = pool[pool["texture"] > pool["texture"].median()]  # selected on an input: covariate
    rescale = {"area": 1e-3, "radius": 1e4, "texture": -2.0, "smooth": 1e3}
    for name, frame, first_id in (("s", src, 5000), ("t_cov", cov, 9000)):
        ids = np.arange(len(frame)) + first_id  # later rows, later ids: a perfect domain feature
        frame.assign(id=ids).to_csv(root / f"{name}_id.csv", index=False)
        frame.assign(**{c: frame[c] * k + 7 for c, k in rescale.items()}).to_csv(
            root / f"{name}_rescaled.csv", index=False
        )
    src.assign(area=src["area"].where(src.index > 4)).to_csv(root / "s_nan.csv", index=False)
    rare = src.copy()
    rare.loc[rare.index[:3], "diagnosis"] = "rare"
    rare.to_csv(root / "s_rare.csv", index=False)
    (root / "m.py").write_text(
        "import torch.nn as nn\n"
        "def mlp():\n"
        "    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))\n"
        "def mlp13():\n"
        "    return nn.Sequential(nn.Linear(13, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "def conv():\n"
        "    return nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),\n"
        "                         nn.Linear(12, 2))\n"
    )
    return root


def _args(
    d: Path, *extra: str, source: str = "s.csv", target: str = "t.csv", out: str = "out"
) -> list[str]:
    return [
        "checkup", "--source", str(d / source), "--target", str(d / target),
        "--label", "diagnosis", "--report", str(d / out / "r.html"), *extra,
    ]  # fmt: skip


# (id, extra options, source, target, exit code, words the one-line message must hold)
BAD: list[tuple[str, tuple[str, ...], str, str, int, tuple[str, ...]]] = [
    ("conv without a layout", ("--model", "{d}/m.py:conv"), "s.csv", "t.csv", 2,
     ("Conv1d", "--input-shape 1,4")),
    ("input shape vs columns", ("--model", "{d}/m.py:mlp", "--input-shape", "13"), "s.csv",
     "t.csv", 2, ("--input-shape 13", "s.csv", "4 numeric feature column", "area")),
    ("model of 13 inputs on 4 columns", ("--model", "{d}/m.py:mlp13"), "s.csv", "t.csv", 3,
     ("first layer takes 13", "s.csv", "area")),
    ("one-row source", (), "s1.csv", "t.csv", 3, ("s1.csv", "1 row", "40")),
    ("text labels vs integers", (), "s_int.csv", "t.csv", 3,
     ("'diagnosis'", "text", "t.csv", "s_int.csv")),
    ("unseen class", (), "s.csv", "t_unseen.csv", 3, ("'cyst'", "t_unseen.csv", "'diagnosis'")),
    # was: only "never occur in the source": the one-letter difference was left to the reader
    ("labels written in another case", (), "s.csv", "t_case.csv", 3,
     ("'Benign' is written 'benign'", "t_case.csv", "same way in both tables")),
    ("too few rows of a class", (), "s_rare.csv", "t.csv", 3,
     ("'rare' (3)", "s_rare.csv", "'diagnosis'")),
    ("missing feature values", (), "s_nan.csv", "t.csv", 3,
     ("'area'", "s_nan.csv", "5 missing")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "source", "target", "code", "words"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_inputs_are_checked_before_any_work(
    d: Path, extra: tuple[str, ...], source: str, target: str, code: int, words: tuple[str, ...]
) -> None:
    extra = tuple(e.replace("{d}", str(d)) for e in extra)
    args = _args(d, *extra, source=source, target=target, out="bad")
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nndoctor: error: ")
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""
    assert not (d / "bad").exists()


def test_conv1d_gets_rows_in_its_input_shape(d: Path) -> None:
    """A Conv1d model with --input-shape 1,4 is trained on rows reshaped to (batch, 1, 4)
    (it was fed (64, 4) and raised inside the monitor stage)."""
    from nndoctor.checkup import CheckupContext, Stage, run_checkup
    from nndoctor.checkup._monitor import monitor_stage

    ctx = CheckupContext(
        model_spec=f"{d}/m.py:conv", source=str(d / "s.csv"), target=str(d / "t.csv"),
        label="diagnosis", input_shape=(1, 4),
    )  # fmt: skip
    out = run_checkup(stages=[Stage("monitor", "m", monitor_stage)], context=ctx)
    rows = out.stages[0].summary
    assert rows[0].severity == "ok", rows
    assert "standardized" in rows[0].evidence


def _monitor_rows(d: Path, source: str) -> list[tuple[str, str]]:
    from nndoctor.checkup import CheckupContext, Stage, run_checkup
    from nndoctor.checkup._monitor import monitor_stage

    ctx = CheckupContext(
        model_spec=f"{d}/m.py:mlp", source=str(d / source), target=str(d / "t.csv"),
        label="diagnosis",
    )  # fmt: skip
    out = run_checkup(stages=[Stage("monitor", "m", monitor_stage)], context=ctx)
    return [(r.finding, r.severity) for r in out.stages[0].summary]


def test_the_model_is_trained_on_standardized_inputs(d: Path) -> None:
    """Raw columns (areas in the thousands) and the same columns standardized give the same
    verdict: a healthy run (raw columns gave exploding gradients and dead units)."""
    raw, std = _monitor_rows(d, "s.csv"), _monitor_rows(d, "s_std.csv")
    assert raw == std
    assert [sev for _, sev in raw] == ["ok"]


def _stages(result_stdout: str) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in json.loads(result_stdout)["stages"]}


@pytest.fixture(scope="module")
def data_only(d: Path) -> object:
    return runner.invoke(app, [*_args(d, "--json", "--fail-on", "error")])


def test_tables_only_judge_no_demo_network(data_only: object) -> None:
    """With --source/--target/--label only, no network is probed or trained: the digits MLP
    is not the user's (it made --fail-on error exit 1 on an i.i.d. split)."""
    assert data_only.exit_code == 0, data_only.output  # type: ignore[attr-defined]
    stages = _stages(data_only.stdout)  # type: ignore[attr-defined]
    assert stages["stability"]["results"] == []
    assert stages["stability"]["summary"][0]["severity"] == "info"  # type: ignore[index]
    assert stages["monitor"]["results"] == []
    assert "digits" not in json.dumps(stages)


def test_user_run_has_one_verdict_everywhere(d: Path, data_only: object) -> None:
    from _checkup_helpers import check_one_verdict

    page = (d / "out" / "r.html").read_text()
    check_one_verdict(data_only.stdout, page)  # type: ignore[attr-defined]
    # the user's column names, never x0, x1, ... (in the text: embedded images' base64 can
    # hold "+x0/" by chance, and did when the plotted draws moved)
    text = re.sub(r"data:image/[^\"')\s]+", "", page)
    assert not re.search(r"\bx\d+\b", re.sub(r"x\d+\.\d+", "", text)), re.findall(
        r".{40}\bx\d+\b.{40}", text
    )
    telling = re.search(r"most telling features: ([\w, ]+)", page)
    assert telling is not None
    assert set(telling.group(1).split(", ")) <= set(FEATURES)


def test_model_only_judges_no_demo_data(d: Path) -> None:
    from nndoctor.checkup import CheckupContext, default_stages, run_checkup

    stages = [s for s in default_stages() if s.name in ("shift-correction", "shift")]
    ctx = CheckupContext(model_spec=f"{d}/m.py:mlp", input_shape=(4,))
    out = run_checkup(stages=stages, context=ctx)
    for stage in out.stages:
        assert stage.results == ()
        assert [r.severity for r in stage.summary] == ["info"]


def test_a_one_row_target_is_insufficient_data_not_ok(d: Path) -> None:
    from nndoctor.checkup import CheckupContext, default_stages, run_checkup

    stages = [s for s in default_stages() if s.name in ("shift-correction", "shift")]
    ctx = CheckupContext(source=str(d / "s.csv"), target=str(d / "t1.csv"), label="diagnosis")
    out = run_checkup(stages=stages, context=ctx)
    for stage in out.stages:
        (row,) = stage.summary
        assert row.severity == "warning"
        assert "insufficient data" in row.finding
        assert "t1.csv" in row.evidence
    assert out.worst_severity() == "warning"


def test_one_row_target_fails_with_fail_on_warning(d: Path) -> None:
    args = _args(d, "--json", "--fail-on", "warning", target="t1.csv", out="one-row")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    rows = [r for s in json.loads(result.stdout)["stages"] for r in s["summary"]]
    shift = [r for r in rows if r["stage"] == "shift"]
    assert shift[0]["finding"].startswith("insufficient data")
    assert "insufficient data" in (Path(args[args.index("--report") + 1])).read_text()


def test_same_seed_gives_the_same_bytes(d: Path) -> None:
    """The user's factory is called under --seed: two runs print byte-identical JSON."""
    args = _args(d, "--model", f"{d}/m.py:mlp", "--input-shape", "4", "--json", "--seed", "3")
    args[args.index("--report") + 1] = str(d / "seeded" / "r.html")
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    # the seed reaches the factory: the same seed builds the same network, another another
    import torch

    from nndoctor.checkup._inputs import load_user_model

    def first_weight(seed: int) -> torch.Tensor:
        return load_user_model(f"{d}/m.py:mlp", weights=None, seed=seed)[0].weight

    assert torch.equal(first_weight(3), first_weight(3))
    assert not torch.equal(first_weight(3), first_weight(4))


def _shift_rows(d: Path, source: str, target: str) -> list[Any]:
    from nndoctor.checkup import CheckupContext, default_stages, run_checkup

    stages = [s for s in default_stages() if s.name == "shift"]
    ctx = CheckupContext(source=str(d / source), target=str(d / target), label="diagnosis")
    return list(run_checkup(stages=stages, context=ctx).summary)


def test_shift_verdict_ignores_units_and_identifiers(d: Path) -> None:
    """A target selected on an input is covariate shift, whatever the columns' units (raw areas
    made the diagnosis say "label shift"), and an id column is left out with a note (it was a
    feature, "the most telling" one)."""
    (with_id,) = _shift_rows(d, "s_id.csv", "t_cov_id.csv")
    (rescaled,) = _shift_rows(d, "s_rescaled.csv", "t_cov_rescaled.csv")
    assert (with_id.finding, with_id.severity) == ("covariate shift", "warning")
    assert (rescaled.finding, rescaled.severity) == (with_id.finding, with_id.severity)
    assert "id left out as identifier" in with_id.evidence
    assert "most telling features: id" not in with_id.evidence
    assert with_id.evidence.split("; id left out")[0] == rescaled.evidence


def test_exclude_and_include_name_existing_columns(d: Path) -> None:
    args = _args(d, "--exclude", "aera", source="s_id.csv", target="t_cov_id.csv", out="bad")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--exclude 'aera'" in result.stderr
    assert "did you mean 'area'?" in result.stderr


def test_stability_rows_of_a_non_relu_model_name_a_real_treatment_and_a_number(
    tmp_path: Path,
) -> None:
    """A LayerNorm/GELU net whose init the checkup keeps, and a tanh net it re-initializes: the
    audit row told the user to run ``init_(model, 'current')`` (not a scheme: init_ rejects it)
    and gave the effect as "per-layer forward factor now nan" (the measured factor was taken
    between ReLU layers only)."""
    from nndoctor.checkup import CheckupContext, default_stages, run_checkup

    (tmp_path / "nets.py").write_text(
        "import torch.nn as nn\n"
        "def ln():\n"
        "    return nn.Sequential(nn.Linear(8, 32), nn.LayerNorm(32), nn.GELU(),\n"
        "                         nn.Linear(32, 2))\n"
        "def tanh():\n"
        "    return nn.Sequential(nn.Linear(18, 32), nn.Tanh(), nn.Linear(32, 7))\n"
    )
    stages = [s for s in default_stages() if s.name == "stability"]
    treatments = {}
    for factory, shape in (("ln", (8,)), ("tanh", (18,))):
        ctx = CheckupContext(model_spec=f"{tmp_path}/nets.py:{factory}", input_shape=shape)
        (stage,) = run_checkup(stages=stages, context=ctx).stages
        rec = stage.results[3]
        audit_row = stage.summary[1]
        for row in stage.summary:
            assert "nan" not in f"{row.evidence} {row.effect}", row
        assert "'current'" not in audit_row.treatment
        treatments[factory] = (rec.scheme, audit_row.treatment, audit_row.effect)
    scheme, treatment, effect = treatments["ln"]
    assert scheme == "current"
    assert "keep" in treatment
    assert effect == "-"
    scheme, treatment, effect = treatments["tanh"]
    assert scheme != "current"
    assert treatment == ("lsuv_(model, x)" if scheme == "lsuv" else f"init_(model, '{scheme}')")
    factor = float(effect.removeprefix("per-layer forward factor now ").split(" ")[0])
    assert 0.5 < factor < 2.0, effect  # a scheme that fits tanh keeps the second moment
