from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nndoctor._io import load_model, load_table, write_text_atomic
from nndoctor._results import ResultMixin, dumps, to_jsonable
from nndoctor.exceptions import InvalidParameterError
from nndoctor.report import Section, render_html, to_sections, write_html


@dataclass(frozen=True, slots=True)
class _R(ResultMixin):
    statistic: float
    flag: bool
    arr: np.ndarray


def test_to_dict_is_strict_json() -> None:
    r = _R(float("nan"), np.bool_(True), np.array([1.0, np.inf]))  # type: ignore[arg-type]
    d = r.to_dict()
    assert d == {"statistic": "nan", "flag": True, "arr": [1.0, "inf"]}
    assert isinstance(d["flag"], bool)
    json.loads(r.to_json())


def test_to_jsonable_nested() -> None:
    assert to_jsonable({"a": (np.int64(1), Path("x"))}) == {"a": [1, "x"]}
    assert json.loads(dumps({"x": -np.inf})) == {"x": "-inf"}


def test_html_escapes_user_strings() -> None:
    evil = "<script>alert(1)</script>"
    page = render_html(
        evil, [Section(evil, "warning", evil, ({evil: evil},), payload={evil: evil})]
    )
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the payload is embedded as JSON that cannot close its <script> element
    assert "\\u003cscript\\u003e" in page


def test_write_html_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    write_html(target, "t", [Section("a", "ok", "fine")])
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_write_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.txt"
    write_text_atomic(target, "complete")

    def boom(self: Path, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", boom)
    with pytest.raises(InvalidParameterError, match="disk full"):  # typed: exit code 2
        write_text_atomic(target, "half")
    assert target.read_text() == "complete"


def test_fallback_sections_show_fields() -> None:
    sections = to_sections(_R(1.0, False, np.zeros(1)))
    assert sections[0].title == "_R"
    assert [row["field"] for row in sections[0].table] == ["statistic", "flag", "arr"]


def test_load_model_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import torch\ndef build():\n    return torch.nn.Linear(3, 2)\nnot_model = 3\n")
    assert load_model(f"{f}:build").in_features == 3
    with pytest.raises(InvalidParameterError, match="form"):
        load_model("no_colon")
    with pytest.raises(InvalidParameterError, match="no attribute"):
        load_model(f"{f}:missing")
    with pytest.raises(InvalidParameterError, match=r"not a torch\.nn\.Module"):
        load_model(f"{f}:not_model")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        load_model(f"{tmp_path / 'nope.py'}:build")


def test_load_table(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n3,4\n")
    assert load_table(p).shape == (2, 2)
    q = tmp_path / "t.parquet"
    load_table(p).to_parquet(q)
    assert load_table(q).shape == (2, 2)
    with pytest.raises(InvalidParameterError, match="suffix"):
        load_table(tmp_path.joinpath("t.json").resolve()) if False else load_table(
            _touch(tmp_path / "t.json")
        )


def _touch(p: Path) -> Path:
    p.write_text("{}")
    return p
