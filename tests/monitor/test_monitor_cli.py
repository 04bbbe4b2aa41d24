"""`nndoctor monitor summarize|run` and the checkup stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _monitor_helpers import mlp, train
from torch import nn
from typer.testing import CliRunner

from nndoctor import Monitor
from nndoctor.cli import app


def _log(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = mlp(3, 16)
    with torch.no_grad():
        model[2].bias.fill_(-5.0)
    with Monitor(model, log_dir=tmp_path) as mon:
        train(model, 4, monitor=mon)
    return tmp_path / "monitor.jsonl"


def test_summarize_table_json_and_report(tmp_path: Path) -> None:
    log = _log(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["monitor", "summarize", str(log)])
    assert res.exit_code == 0, res.output
    assert "Training monitor: findings" in res.output
    assert "dead_units" in res.output
    res = runner.invoke(app, ["monitor", "summarize", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["steps"] == [1, 2, 3, 4]
    assert payload["findings"][0]["check"] == "dead_units"
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["monitor", "summarize", str(log), "--report", str(report)])
    assert res.exit_code == 0, res.output
    html = report.read_text()
    assert "Gradient norm per layer" in html
    assert "data:image/png;base64," in html


def test_summarize_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["monitor", "summarize", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2
    assert "does not exist" in res.output


def test_monitor_run_with_user_model(tmp_path: Path) -> None:
    factory = tmp_path / "net.py"
    factory.write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))\n"
    )
    res = CliRunner().invoke(
        app,
        [
            "monitor",
            "run",
            "--model",
            f"{factory}:build",
            "--steps",
            "5",
            "--log-dir",
            str(tmp_path / "log"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps"] == [1, 2, 3, 4, 5]
    assert (tmp_path / "log" / "monitor.jsonl").is_file()


def test_monitor_run_schedule_options() -> None:
    res = CliRunner().invoke(
        app, ["monitor", "run", "--steps", "8", "--every", "2", "--update-every", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["steps"] == [2, 4, 6, 8]
    ratios = [v for v in payload["series"]["update_ratio"].values()]
    assert all(r is not None and r > 0 for series in ratios for r in series)  # every tick
    bad = CliRunner().invoke(app, ["monitor", "run", "--update-every", "0"])
    assert bad.exit_code == 2
    assert "update_every must be >= 1" in bad.output


def test_checkup_stage_finds_and_treats_vanishing(monkeypatch: pytest.MonkeyPatch) -> None:
    import nndoctor.checkup._monitor as stage_module
    from nndoctor.checkup import CheckupContext
    from nndoctor.checkup._monitor import monitor_stage

    monkeypatch.setattr(stage_module, "MONITOR_STAGE_STEPS", 12)  # the full stage trains 60

    seen: list[float] = []
    outcome = monitor_stage(CheckupContext(progress=lambda f, t: seen.append(f)))
    assert outcome.name == "monitor"
    assert seen[-1] == 1.0
    van = [r for r in outcome.summary if r.finding.startswith("vanishing")]
    assert van
    assert van[0].severity in ("warning", "error")
    assert "kaiming_normal" in van[0].treatment
    assert "→ 0" in van[0].effect  # the treated run has no vanishing finding
    assert len(outcome.results) == 2


def test_nndoctor_monitor_is_lazy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nndoctor; print('torch' in sys.modules); nndoctor.Monitor; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    assert isinstance(nn.Module, type)
