"""Command-line contract across commands: the same command with the same --seed prints the same
bytes (the user's factory is built under the seed too), and every command that judges takes
--fail-on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nndoctor.cli import app

runner = CliRunner()

# a factory that draws its weights from torch's global generator and sets no seed of its own
FACTORY = """
from torch import nn

def make():
    layers = []
    for _ in range({depth}):
        layers += [nn.Linear(8, 8), nn.{act}()]
    return nn.Sequential(*layers, nn.Linear(8, 3))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli")
    (d / "healthy.py").write_text(FACTORY.format(depth=2, act="ReLU"))
    (d / "sigmoid.py").write_text(FACTORY.format(depth=12, act="Sigmoid"))
    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(120, 8)), columns=[f"f{i}" for i in range(8)])
    tgt = pd.DataFrame(rng.normal(0.4, 1.0, size=(100, 8)), columns=src.columns)
    src["y"], tgt["y"] = rng.integers(0, 3, 120), rng.integers(0, 3, 100)
    src.to_csv(d / "s.csv", index=False)
    tgt.to_csv(d / "t.csv", index=False)
    return {k: str(d / f"{k}.{ext}") for k, ext in
            (("healthy", "py"), ("sigmoid", "py"), ("s", "csv"), ("t", "csv"))}  # fmt: skip


def _commands(f: dict[str, str]) -> list[list[str]]:
    model = ["--model", f"{f['healthy']}:make", "--input-shape", "8", "--batch", "32"]
    tables = ["--source", f["s"], "--target", f["t"]]
    return [
        ["stability", "probe", *model],
        ["stability", "audit", "--model", f"{f['healthy']}:make"],
        ["stability", "symmetry", *model],
        ["shift", "test", *tables, "--exclude", "y", "--method", "mmd", "--permutations", "50"],
        ["shift", "test", *tables, "--exclude", "y", "--method", "c2st"],
        ["shift", "diagnose", *tables, "--label", "y"],
    ]


def test_same_seed_same_bytes(files: dict[str, str]) -> None:
    """Each command twice with the same --seed: byte-identical JSON; a factory that sets no seed
    of its own is built under --seed (another seed gives other weights, so another probe)."""
    for args in _commands(files):
        first = runner.invoke(app, [*args, "--seed", "3", "--json"])
        second = runner.invoke(app, [*args, "--seed", "3", "--json"])
        assert first.exit_code == 0, (args, first.output)
        assert first.stdout == second.stdout, args
    probe = ["stability", "probe", "--model", f"{files['healthy']}:make", "--input-shape", "8"]
    a = runner.invoke(app, [*probe, "--seed", "3", "--json"]).stdout
    b = runner.invoke(app, [*probe, "--seed", "4", "--json"]).stdout
    assert a != b


JUDGING = [
    ["checkup"],
    ["stability", "probe"],
    ["stability", "audit"],
    ["stability", "symmetry"],
    ["stability", "recommend"],
    ["monitor", "summarize"],
    ["monitor", "run"],
    ["shift", "test"],
    ["shift", "diagnose"],
    ["shift", "weights"],
    ["shift", "labels"],
    ["shift", "stream"],
]


@pytest.mark.parametrize("command", JUDGING, ids=" ".join)
def test_every_judging_command_takes_fail_on(command: list[str]) -> None:
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    assert "--fail-on" in res.stdout


def test_fail_on_follows_the_verdict(files: dict[str, str]) -> None:
    """A deep sigmoid stack (vanishing) exits 1 under --fail-on warning; the healthy ReLU net 0;
    without --fail-on a finding never changes the exit code."""
    base = ["stability", "probe", "--input-shape", "8", "--seed", "0"]
    sick = runner.invoke(app, [*base, "--model", f"{files['sigmoid']}:make", "--json"])
    assert sick.exit_code == 0, sick.output
    assert '"verdict": "vanishing"' in sick.stdout
    sick = runner.invoke(app, [*base, "--model", f"{files['sigmoid']}:make", "--fail-on",
                               "warning"])  # fmt: skip
    assert sick.exit_code == 1, sick.output
    well = runner.invoke(
        app, [*base, "--model", f"{files['healthy']}:make", "--fail-on", "warning"]
    )
    assert well.exit_code == 0, well.output
    bad = runner.invoke(app, [*base, "--model", f"{files['healthy']}:make", "--fail-on", "often"])
    assert bad.exit_code == 2
