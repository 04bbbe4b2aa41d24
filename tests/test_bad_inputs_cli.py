"""Bad input on the command line: exit code 2 (usage) or 3 (data), one line on stderr that names
the offending file, column or option, no traceback, nothing on stdout, and no output file left.

Each case marked ``# was: ...`` printed a Python traceback (exit 1) before the input audit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nndoctor.cli import app
from nndoctor.exceptions import InvalidParameterError

runner = CliRunner()


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad_cli")
    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    src["y"] = rng.integers(0, 2, 60)
    tgt = src.sample(frac=1.0, random_state=0)
    src.to_csv(root / "s.csv", index=False)
    tgt.to_csv(root / "t.csv", index=False)
    tgt.assign(a="hello").to_csv(root / "text.csv", index=False)
    tgt.rename(columns={"a": "z"}).to_csv(root / "other.csv", index=False)
    (root / "header.csv").write_text("a,b,c,y\n")
    (root / "adir").mkdir()
    (root / "m.py").write_text(
        "import torch.nn as nn\n"
        "def good():\n    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "def raises():\n    raise RuntimeError('factory boom')\n"
        "class _F(nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.lin = nn.Linear(3, 3)\n"
        "    def forward(self, x):\n        raise RuntimeError('forward boom')\n"
        "def forward_fails():\n    return _F()\n"
    )
    (root / "syntax.py").write_text("def good(:\n")
    torch.save(nn.Linear(7, 2).state_dict(), root / "other.pt")
    return root


# (id, the command line with {d} for the fixture folder, exit code, words the message must hold)
CASES: list[tuple[str, str, int, tuple[str, ...]]] = [
    # output paths are checked before any work (was: IsADirectoryError / FileExistsError after
    # the whole run, and a .tmp file left beside the report)
    ("report is a directory", "stability probe --model {d}/m.py:good --input-shape 3 "
     "--report {d}/adir", 2, ("{d}/adir", "directory")),
    ("report under a file", "shift test --source {d}/s.csv --target {d}/t.csv "
     "--report {d}/s.csv/r.html", 2, ("{d}/s.csv", "is a file")),
    ("weights --out is a directory", "shift weights --source {d}/s.csv --target {d}/t.csv "
     "--out {d}/adir", 2, ("{d}/adir", "directory")),
    ("checkup --report under a file", "checkup --report {d}/s.csv/r.html", 2, ("is a file",)),
    ("monitor log dir under a file", "monitor run --steps 1 --log-dir {d}/s.csv/logs", 2,
     ("log_dir",)),
    ("scenario --out under a file", "scenario flu-season --n-source 50 --n-target 50 "
     "--out {d}/s.csv/x", 2, ("{d}/s.csv",)),
    # models (was: the factory's RuntimeError / SyntaxError, torch.load's errors)
    ("factory raises", "stability audit --model {d}/m.py:raises", 2,
     ("m.py:raises", "factory boom")),
    ("model file does not import", "stability audit --model {d}/syntax.py:good", 2,
     ("syntax.py", "SyntaxError")),
    ("model file missing", "stability audit --model {d}/nope.py:good", 2, ("nope.py",)),
    ("factory missing", "stability audit --model {d}/m.py:nothere", 2, ("'nothere'",)),
    ("weights missing", "stability audit --model {d}/m.py:good --weights {d}/nope.pt", 2,
     ("nope.pt", "does not exist")),
    ("weights not a checkpoint", "stability audit --model {d}/m.py:good --weights {d}/s.csv", 3,
     ("s.csv",)),
    ("weights of another model", "stability audit --model {d}/m.py:good --weights {d}/other.pt",
     3, ("other.pt", "does not fit")),  # torch's message spans lines: one line here
    ("forward fails", "stability symmetry --model {d}/m.py:forward_fails --input-shape 3", 3,
     ("forward pass", "forward boom")),
    ("input shape does not fit", "stability symmetry --model {d}/m.py:good --input-shape 5", 3,
     ("expects 3 features", "have 5")),
    ("input shape malformed", "stability probe --model {d}/m.py:good --input-shape 3,,x", 2,
     ("--input-shape", "'3,,x'")),  # was: read as (3,)
    ("batch 0", "stability probe --model {d}/m.py:good --input-shape 3 --batch 0", 2,
     ("batch",)),
    # tables
    ("diagnose label missing", "shift diagnose --source {d}/s.csv --target {d}/t.csv --label zz",
     2, ("'zz'",)),
    ("test label missing", "shift test --source {d}/s.csv --target {d}/t.csv --label zz", 2,
     ("'zz'",)),
    ("stream time column missing", "shift stream {d}/s.csv --time-column zz", 2, ("'zz'",)),
    ("weights --exclude missing", "shift weights --source {d}/s.csv --target {d}/t.csv "
     "--out {d}/w.csv --exclude zz", 2, ("'zz'",)),
    ("table missing", "shift test --source {d}/nope.csv --target {d}/t.csv", 2, ("nope.csv",)),
    ("table is a directory", "shift test --source {d}/adir --target {d}/t.csv", 2,
     ("adir", "directory")),
    ("table header only", "shift test --source {d}/s.csv --target {d}/header.csv", 3,
     ("header.csv", "no rows")),
    ("text in a numeric column",  # was: silently one-hot encoded, every number a category
     "shift diagnose --source {d}/s.csv --target {d}/text.csv --label y", 3,
     ("'a'", "numbers", "text.csv", "'hello'")),
    ("columns differ", "shift test --source {d}/s.csv --target {d}/other.csv", 3,
     ("other.csv", "'a'")),
    ("weights columns differ", "shift weights --source {d}/s.csv --target {d}/other.csv "
     "--out {d}/w.csv", 3, ("other.csv", "'a'")),
    # checkup checks the user's tables before any stage (was: KeyError / ValueError)
    # a column named on the command line that the table lacks is a usage error, everywhere
    ("checkup label missing", "checkup --source {d}/s.csv --target {d}/t.csv --label zz", 2,
     ("'zz'", "s.csv")),
    ("checkup columns differ", "checkup --source {d}/s.csv --target {d}/other.csv --label y", 3,
     ("other.csv", "lacks", "'a'")),
    ("checkup text column", "checkup --source {d}/s.csv --target {d}/text.csv --label y", 3,
     ("'a'", "text")),
    # numeric options
    ("alpha 0", "shift test --source {d}/s.csv --target {d}/t.csv --alpha 0", 2, ("alpha",)),
    ("permutations 0", "shift test --source {d}/s.csv --target {d}/t.csv --method mmd "
     "--permutations 0", 2, ("--permutations",)),
    ("clip -1", "shift weights --source {d}/s.csv --target {d}/t.csv --out {d}/w.csv --clip -1",
     2, ("clip",)),
    ("deep-chain weight nan", "scenario deep-chain --weight nan", 2, ("weight",)),  # was: NaN
    ("deep-chain depth 0", "scenario deep-chain --depth 0", 2, ("depth",)),
    ("monitor steps -1", "monitor run --steps -1", 2, ("steps",)),
]  # fmt: skip


def _fill(command: str, d: Path) -> list[str]:
    return command.replace("{d}", str(d)).split()


@pytest.mark.parametrize(
    ("args", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_an_exit_code(
    d: Path, args: str, code: int, words: tuple[str, ...]
) -> None:
    before = sorted(d.rglob("*"))
    result = runner.invoke(app, [*_fill(args, d), "--json"])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nndoctor: error: ")
    for word in words:
        assert word.replace("{d}", str(d)) in lines[0]
    assert result.stdout == ""  # --json promises JSON on stdout only on success
    assert sorted(d.rglob("*")) == before  # nothing written, not even a temporary file


def test_debug_raises_the_typed_error(d: Path) -> None:
    args = ["--debug", "stability", "audit", "--model", f"{d}/m.py:raises"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, InvalidParameterError)


def test_an_os_error_is_one_line_and_exit_2(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(d / "s.csv"))

    monkeypatch.setattr(pd, "read_csv", denied)
    result = runner.invoke(app, _fill("shift test --source {d}/s.csv --target {d}/t.csv", d))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"nndoctor: error: [Errno 13] Permission denied: '{d}/s.csv'; check the path and its "
        "permissions"
    ]
